//! Every input under `fuzz/seeds/TARGET/` and `fuzz/regressions/TARGET/`
//! (crashes found by `cargo xtask fuzz`, kept once fixed) goes through the
//! same entry point as the fuzz target, so a fixed crash stays fixed.
use std::path::Path;

#[test]
fn fuzz_inputs_do_not_panic() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut seen = 0;
    for kind in ["seeds", "regressions"] {
        for entry in std::fs::read_dir(fuzz.join(kind)).expect("fuzz/ directory") {
            let dir = entry.unwrap().path();
            let target = dir.file_name().unwrap().to_str().unwrap().to_owned();
            let check = ai_forensics::fuzz::by_name(&target)
                .unwrap_or_else(|| panic!("{}: no fuzz target {target}", dir.display()));
            for f in std::fs::read_dir(&dir).unwrap() {
                let f = f.unwrap().path();
                if f.file_name().is_some_and(|n| n == ".keep") {
                    continue;
                }
                let data = std::fs::read(&f).unwrap();
                let r = std::panic::catch_unwind(|| check(&data));
                assert!(r.is_ok(), "{} panicked", f.display());
                seen += 1;
            }
        }
    }
    assert!(seen >= 10, "only {seen} fuzz inputs found");
}
