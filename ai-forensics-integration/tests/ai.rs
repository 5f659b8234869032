//! AI-aware forensics: artefacts, phases, exfiltration, GPU calls, baselines.
use std::{io::Read as _, net::TcpListener, path::Path, process::Command};

use ai_forensics_integration::{af, af_json, python, require_root, root, summary, tempdir};
use serde_json::Value;

fn ai(recs: &[Value]) -> &Value {
    &summary(recs)["ai"]
}

fn phase_names(ai: &Value, pid: &str) -> Vec<String> {
    ai["phases"][pid]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn pytorch_artefacts_phases_and_classification() {
    require_root();
    let dir = tempdir("ai-torch");
    let models = root().join("models");
    let out = dir.join("m");
    let (train, _) = af_json(&[
        "run",
        "--mode",
        "events",
        "--",
        python().to_str().unwrap(),
        models.join("train.py").to_str().unwrap(),
        "--steps",
        "2000",
        "--out",
        out.to_str().unwrap(),
    ]);
    let a = ai(&train);
    // Every checkpoint is a PyTorch artefact, with the bytes actually in the file.
    for name in [
        "checkpoint-epoch1.pt",
        "checkpoint-epoch2.pt",
        "checkpoint-epoch3.pt",
        "model.pt",
    ] {
        let p = out.join(name);
        let art = a["artefacts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["path"] == p.to_str().unwrap())
            .unwrap_or_else(|| panic!("{name} not recognised"));
        assert_eq!(art["kind"], "checkpoint", "{name}");
        assert_eq!(
            art["format"], "pytorch-zip",
            "{name}: format from the file's magic"
        );
        assert_eq!(
            art["bytes_written"].as_u64().unwrap(),
            std::fs::metadata(&p).unwrap().len(),
            "{name}: bytes"
        );
    }
    // Phases of the training process, in order: start-up (imports), training steps, checkpoint writes.
    let pid = a["classification"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, c)| c["kind"] == "training")
        .map(|(p, _)| p.clone())
        .expect("a training process");
    let names = phase_names(a, &pid);
    let first = |n: &str| {
        names
            .iter()
            .position(|x| x == n)
            .unwrap_or_else(|| panic!("no {n} phase in {names:?}"))
    };
    assert_eq!(names[0], "startup", "imports come first: {names:?}");
    assert!(first("startup") < first("compute"), "{names:?}");
    assert!(first("compute") < first("checkpoint"), "{names:?}");
    assert!(
        names.iter().filter(|n| *n == "checkpoint").count() >= 3,
        "one checkpoint phase per epoch: {names:?}"
    );
    assert!(a["classification"][&pid]["confidence"].as_f64().unwrap() >= 0.75);

    let (pred, _) = af_json(&[
        "run",
        "--mode",
        "events",
        "--",
        python().to_str().unwrap(),
        models.join("predictions.py").to_str().unwrap(),
        "--model",
        out.join("model.pt").to_str().unwrap(),
    ]);
    let b = ai(&pred);
    let classes: Vec<&str> = b["classification"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert!(classes.contains(&"inference"), "{classes:?}");
    let model = b["artefacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["path"] == out.join("model.pt").to_str().unwrap())
        .unwrap();
    assert_eq!(model["kind"], "weights");
    assert!(
        model["bytes_read"].as_u64().unwrap()
            >= std::fs::metadata(out.join("model.pt")).unwrap().len()
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn exfiltration_equals_the_bytes_sent() {
    require_root();
    let dir = tempdir("exfil");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let rx = std::thread::spawn(move || {
        let (mut c, _) = listener.accept().unwrap();
        let mut v = Vec::new();
        c.read_to_end(&mut v).unwrap();
        v.len() as u64
    });
    let model = dir.join("weights.safetensors");
    let script = format!(
        "import os, socket\nh=b'{{\"w\":{{}}}}'\nopen({m:?},'wb').write(len(h).to_bytes(8,'little')+h+os.urandom(300000))\nd=open({m:?},'rb').read()\ns=socket.create_connection(('127.0.0.1',{port}))\ns.sendall(d)\ns.close()\n",
        m = model.to_str().unwrap()
    );
    let (recs, _) = af_json(&[
        "run",
        "--mode",
        "events",
        "--",
        python().to_str().unwrap(),
        "-c",
        &script,
    ]);
    let received = rx.join().unwrap();
    let a = ai(&recs);
    let size = std::fs::metadata(&model).unwrap().len();
    assert_eq!(received, size);
    let art = a["artefacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["path"] == model.to_str().unwrap())
        .expect("safetensors artefact");
    assert_eq!(art["format"], "safetensors");
    let trees = a["exfiltration"].as_object().unwrap();
    let t = trees.values().next().expect("a tree");
    assert_eq!(t["sent_bytes"].as_u64().unwrap(), received, "bytes sent");
    assert_eq!(
        t["after_model_read"].as_u64().unwrap(),
        received,
        "bytes sent after reading the model"
    );
    assert_eq!(
        t["sent_to"][format!("127.0.0.1:{port}")].as_u64().unwrap(),
        received
    );
    assert!(t["model_bytes_in"].as_u64().unwrap() >= size);
    let _ = std::fs::remove_dir_all(dir);
}

fn build_fake_cuda(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let src = dir.join("fakecuda.c");
    std::fs::write(
        &src,
        "#include <stddef.h>\n#include <stdint.h>\nstatic uintptr_t next = 0x700000000000;\n\
         __attribute__((noinline, visibility(\"default\"))) int cudaMalloc(void **p, size_t n) { *p = (void *)next; next += (n + 255) & ~255UL; return 0; }\n\
         __attribute__((noinline, visibility(\"default\"))) int cudaFree(void *p) { (void)p; return 0; }\n\
         __attribute__((noinline, visibility(\"default\"))) int cudaMemcpy(void *d, const void *s, size_t n, int k) { (void)d; (void)s; (void)k; return (int)(n & 0); }\n",
    )
    .unwrap();
    let prog = dir.join("gputest.c");
    std::fs::write(
        &prog,
        "#include <stdlib.h>\nint cudaMalloc(void **p, size_t n); int cudaFree(void *p); int cudaMemcpy(void *d, const void *s, size_t n, int k);\n\
         int main(int c, char **v) { int n = atoi(v[1]); void *p[1000];\n\
         for (int i = 0; i < n; i++) cudaMalloc(&p[i], 1000 * (i + 1));\n\
         for (int i = 0; i < n; i++) cudaMemcpy(p[i], 0, 512, 1);\n\
         for (int i = 0; i < n / 2; i++) cudaFree(p[i]);\n return 0; }\n",
    )
    .unwrap();
    let lib = dir.join("libfakecuda.so");
    let exe = dir.join("gputest");
    assert!(
        Command::new("gcc")
            .args(["-shared", "-fPIC", "-O2", "-o"])
            .arg(&lib)
            .arg(&src)
            .status()
            .unwrap()
            .success()
    );
    let rpath = format!("-Wl,-rpath,{}", dir.display());
    assert!(
        Command::new("gcc")
            .args(["-O2", "-o"])
            .arg(&exe)
            .arg(&prog)
            .arg(format!("-L{}", dir.display()))
            .args(["-lfakecuda", &rpath])
            .status()
            .unwrap()
            .success()
    );
    (lib, exe)
}

#[test]
fn cuda_calls_are_counted_exactly_by_uprobes() {
    require_root();
    let dir = tempdir("gpu");
    let (lib, exe) = build_fake_cuda(&dir);
    let (recs, _) = af_json(&[
        "run",
        "--mode",
        "events",
        "--gpu-lib",
        lib.to_str().unwrap(),
        "--",
        exe.to_str().unwrap(),
        "40",
    ]);
    let g = &ai(&recs)["gpu"];
    assert_eq!(g["cuda"]["cudaMalloc"]["calls"], 40);
    assert_eq!(
        g["cuda"]["cudaMalloc"]["bytes"],
        (1..=40u64).map(|i| 1000 * i).sum::<u64>()
    );
    assert_eq!(g["cuda"]["cudaMemcpy"]["calls"], 40);
    assert_eq!(g["cuda"]["cudaMemcpy"]["bytes"], 40 * 512);
    assert_eq!(g["cuda"]["cudaFree"]["calls"], 20);
    assert_eq!(g["outstanding_allocations"], 20);
    assert_eq!(
        g["outstanding_bytes"],
        (21..=40u64).map(|i| 1000 * i).sum::<u64>()
    );
    // Without a GPU or CUDA library the summary says so.
    let (plain, _) = af_json(&["run", "--mode", "events", "--", "true"]);
    let note = ai(&plain)["gpu"]["note"].as_str().unwrap_or("");
    let has_gpu = Path::new("/dev/nvidiactl").exists() || Path::new("/dev/dri").exists();
    if !has_gpu {
        assert!(note.contains("no GPU device"), "{note}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_learned_baseline_flags_a_new_executable_and_endpoint() {
    require_root();
    let dir = tempdir("baseline");
    let db = dir.join("s.db");
    let out = dir.join("out");
    let agent = root().join("ai-forensics-integration/scripts/agent.py");
    let base = |extra: &[&str]| {
        let mut a = vec![
            "run",
            "--no-live",
            "--mode",
            "events",
            "--store",
            db.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        a.extend_from_slice(&[
            "--",
            python().to_str().unwrap(),
            agent.to_str().unwrap(),
            out.to_str().unwrap(),
        ]);
        a.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    for _ in 0..2 {
        let r = af(&base(&[]));
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let profile = dir.join("profile.json");
    let l = af(&[
        "baseline",
        "learn",
        "1",
        "2",
        "-o",
        profile.to_str().unwrap(),
        "--store",
        db.to_str().unwrap(),
    ]);
    assert_eq!(l.code, 0, "{}", l.stderr);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    std::thread::spawn(move || {
        for c in listener.incoming().flatten() {
            let mut c = c;
            let mut v = Vec::new();
            let _ = c.read_to_end(&mut v);
        }
    });
    let mut evil = base(&[
        "--baseline",
        profile.to_str().unwrap(),
        "--json",
        "-o",
        dir.join("evil.jsonl").to_str().unwrap(),
    ]);
    evil.extend(["shell-and-connect".to_owned(), port.clone()]);
    assert_eq!(af(&evil).code, 0);
    let recs = ai_forensics_integration::parse_jsonl(
        &std::fs::read_to_string(dir.join("evil.jsonl")).unwrap(),
    );
    let devs: Vec<String> = recs
        .iter()
        .filter(|r| r["type"] == "alert" && r["detail"]["source"] == "baseline")
        .map(|r| r["detail"]["reason"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        devs.iter().any(|d| d.contains("new executable /bin/sh")),
        "{devs:?}"
    );
    assert!(
        devs.iter()
            .any(|d| d.contains(&format!("new endpoint 127.0.0.1:{port}"))),
        "{devs:?}"
    );
    let good = base(&[
        "--baseline",
        profile.to_str().unwrap(),
        "--json",
        "-o",
        dir.join("good.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(af(&good).code, 0);
    let recs = ai_forensics_integration::parse_jsonl(
        &std::fs::read_to_string(dir.join("good.jsonl")).unwrap(),
    );
    let devs: Vec<&Value> = recs.iter().filter(|r| r["type"] == "alert").collect();
    assert!(devs.is_empty(), "a benign run was flagged: {devs:?}");
    assert!(
        summary(&recs)["ai"]["baseline"]["deviations"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{}",
        summary(&recs)["ai"]["baseline"]
    );
    let _ = std::fs::remove_dir_all(dir);
}
