"""A small process tree for the integration tests: two multiprocessing
workers (processes) and two threads, each making a known number of getppid
calls, and printing `worker <pid> <tid> <count>`."""
import multiprocessing as mp
import os
import sys
import threading

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000


def work(k: int) -> None:
    n = k * N
    for _ in range(n):
        os.getppid()
    # One write(2) per line, so lines from threads and processes never mix.
    os.write(1, f"worker {os.getpid()} {threading.get_native_id()} {n}\n".encode())



if __name__ == "__main__":
    mp.set_start_method("fork")
    procs = [mp.Process(target=work, args=(k,)) for k in (1, 2)]
    for p in procs:
        p.start()
    threads = [threading.Thread(target=work, args=(k,)) for k in (3, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in procs:
        p.join()
