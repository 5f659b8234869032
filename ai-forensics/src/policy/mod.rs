//! Policy: rule files, the rule engine, and the bundled rule pack for AI
//! workloads. User space decides; `enforce` and the kernel act.
pub mod engine;
pub mod replay;
pub mod rules;

/// The bundled rule pack for AI workloads (`--rules builtin`).
pub static BUILTIN: &str = include_str!("../../../rules/ai-workloads.yaml");

/// Loads `--rules`: a file, or `builtin` for the bundled pack.
pub fn load(spec: &str) -> crate::error::Result<rules::Rules> {
    if spec == "builtin" {
        rules::Rules::parse("builtin:ai-workloads.yaml", BUILTIN)
    } else {
        rules::Rules::load(std::path::Path::new(spec))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn builtin_pack_is_valid() {
        let r = super::load("builtin").unwrap();
        assert!(r.rules.len() >= 10, "{}", r.rules.len());
        assert!(r.rules.iter().any(|r| r.kernel));
    }
}
