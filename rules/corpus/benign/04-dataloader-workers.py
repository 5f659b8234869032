# expect: pass
# DataLoader-style workers forked after the weights are loaded.
import multiprocessing as mp, os
def work(i):
    return len(open(os.environ["AF_WEIGHTS"], "rb").read()) + i
if __name__ == "__main__":
    open(os.environ["AF_WEIGHTS"], "rb").read()
    with mp.get_context("fork").Pool(2) as p:
        print(sum(p.map(work, range(8))))
