//! The bundled PyTorch workloads, bare and traced: training throughput
//! (steps per second, as the script measures it) and the prediction run's
//! wall time (imports, model load, inference), in alternating rounds.
use std::{collections::BTreeMap, process::Command};

use serde_json::{Value, json};

use super::{Ctx, stats};

/// Runs the prediction script and prints its wall time, imports included.
const TIMED: &str = "import runpy, sys, time\n\
t = time.perf_counter()\n\
sys.argv = sys.argv[1:]\n\
runpy.run_path(sys.argv[0], run_name='__main__')\n\
print('BENCH_SECONDS %.6f' % (time.perf_counter() - t))\n";

const CONFIGS: &[(&str, &str)] = &[
    ("bare", "bare"),
    ("count", "ai-forensics count mode"),
    ("events", "ai-forensics events mode, into the store"),
];

fn command(ctx: &Ctx, key: &str, argv: &[String]) -> Command {
    let mut c;
    match key {
        "bare" => {
            c = Command::new(&argv[0]);
            c.args(&argv[1..]);
        }
        "count" => {
            c = Command::new(&ctx.bin);
            c.args(["run", "--no-live", "--mode", "count", "--no-store", "--"])
                .args(argv);
        }
        _ => {
            c = Command::new(&ctx.bin);
            c.args(["run", "--no-live", "--mode", "events", "--store"])
                .arg(ctx.tmp.join("torch.db"))
                .arg("--")
                .args(argv);
        }
    }
    c
}

fn number_after(out: &str, marker: &str, before: &str) -> Option<f64> {
    out.lines().find_map(|l| {
        let (_, rest) = l.split_once(marker)?;
        let v = rest.split(before).next()?.trim();
        v.parse().ok()
    })
}

/// The slowdown of `key` in each round against the bare run of the same
/// round (rounds alternate the configurations, so a drift of the machine
/// hits both), in percent: its median and 95% interval.
fn paired(
    rounds: &BTreeMap<&str, BTreeMap<usize, f64>>,
    key: &str,
    slowdown: fn(bare: f64, traced: f64) -> f64,
) -> Value {
    let (Some(bare), Some(traced)) = (rounds.get("bare"), rounds.get(key)) else {
        return Value::Null;
    };
    let d: Vec<f64> = traced
        .iter()
        .filter_map(|(r, t)| bare.get(r).map(|b| slowdown(*b, *t)))
        .collect();
    let ci = stats::median_ci95(&d);
    json!({
        "pairs": d.len(),
        "median_percent": stats::median(&d),
        "ci95_percent": ci.map(|(lo, hi)| [lo, hi]),
        "distinguishable_from_zero": ci.map(|(lo, hi)| lo > 0.0 || hi < 0.0),
    })
}

/// Medians of 20 alternating runs (3 with `--quick`), and each traced
/// configuration's per-round slowdown against bare with its 95% interval.
pub fn run(ctx: &Ctx) -> Value {
    println!("== PyTorch workloads ==");
    let py = "/usr/bin/python3".to_owned();
    let models = ctx.root.join("models");
    let out = ctx.tmp.join("torch-out");
    let steps = if ctx.quick { "500" } else { "1000" };
    let train: Vec<String> = vec![
        py.clone(),
        models.join("train.py").display().to_string(),
        "--out".into(),
        out.display().to_string(),
        "--steps".into(),
        steps.into(),
    ];
    let predict: Vec<String> = vec![
        py,
        "-c".into(),
        TIMED.into(),
        models.join("predictions.py").display().to_string(),
        "--model".into(),
        out.join("model.pt").display().to_string(),
    ];
    let rounds = if ctx.quick { 3 } else { 20 };
    let mut steps_s: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut predict_s: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut errors: BTreeMap<&str, String> = BTreeMap::new();
    let mut train_by_round: BTreeMap<&str, BTreeMap<usize, f64>> = BTreeMap::new();
    let mut predict_by_round: BTreeMap<&str, BTreeMap<usize, f64>> = BTreeMap::new();
    for round in 0..rounds {
        for (key, label) in CONFIGS {
            let t = command(ctx, key, &train).output();
            let p = command(ctx, key, &predict).output();
            match (t, p) {
                (Ok(t), Ok(p)) => {
                    let to = String::from_utf8_lossy(&t.stdout);
                    let po = String::from_utf8_lossy(&p.stdout);
                    match (
                        number_after(&to, "steps in ", "s (")
                            .and(number_after(&to, "s (", " steps/s")),
                        number_after(&po, "BENCH_SECONDS", "\n"),
                    ) {
                        (Some(s), Some(w)) => {
                            println!(
                                "  round {}: {label:<42} {s:>8.1} steps/s   predictions {w:.3} s",
                                round + 1
                            );
                            steps_s.entry(key).or_default().push(s);
                            predict_s.entry(key).or_default().push(w);
                            train_by_round.entry(key).or_default().insert(round, s);
                            predict_by_round.entry(key).or_default().insert(round, w);
                        }
                        _ => {
                            errors.insert(
                                key,
                                format!(
                                    "no timing in the output: {}",
                                    super::proc::tail(
                                        &format!("{to}{}", String::from_utf8_lossy(&t.stderr)),
                                        300
                                    )
                                ),
                            );
                        }
                    }
                }
                (Err(e), _) | (_, Err(e)) => {
                    errors.insert(key, e.to_string());
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&out);
    for f in ["torch.db", "torch.db-wal", "torch.db-shm"] {
        let _ = std::fs::remove_file(ctx.tmp.join(f));
    }
    let bare_steps = steps_s.get("bare").map_or(f64::NAN, |v| stats::median(v));
    let bare_wall = predict_s.get("bare").map_or(f64::NAN, |v| stats::median(v));
    let rows: Vec<Value> = CONFIGS
        .iter()
        .map(|(key, label)| {
            let mut row = json!({"key": key, "label": label});
            if let Some(v) = steps_s.get(key) {
                let m = stats::median(v);
                row["train_steps_per_s"] =
                    json!({"samples": v, "median": m, "min": stats::min(v), "max": stats::max(v)});
                row["train_slowdown_percent"] = json!((bare_steps / m - 1.0) * 100.0);
            }
            if let Some(v) = predict_s.get(key) {
                let m = stats::median(v);
                row["predictions_wall_s"] =
                    json!({"samples": v, "median": m, "min": stats::min(v), "max": stats::max(v)});
                row["predictions_slowdown_percent"] = json!((m / bare_wall - 1.0) * 100.0);
            }
            if *key != "bare" {
                // Fewer steps per second, or more seconds, is slower.
                row["train_paired"] = paired(&train_by_round, key, |b, t| (b / t - 1.0) * 100.0);
                row["predictions_paired"] =
                    paired(&predict_by_round, key, |b, t| (t / b - 1.0) * 100.0);
            }
            if let Some(e) = errors.get(key) {
                row["error"] = json!(e);
            }
            row
        })
        .collect();
    json!({"rounds": rounds, "train_steps": steps, "configs": rows})
}
