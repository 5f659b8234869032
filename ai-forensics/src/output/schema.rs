//! The JSON Lines schema, printed by `ai-forensics schema` (the file
//! `docs/schema.json` is the source).
/// JSON Schema of a record.
pub static SCHEMA: &str = include_str!("../../../docs/schema.json");

#[cfg(test)]
mod tests {
    #[test]
    fn schema_is_json_and_lists_the_envelope() {
        let v: serde_json::Value = serde_json::from_str(super::SCHEMA).unwrap();
        let req = v["required"].as_array().unwrap();
        assert_eq!(req.len(), 12);
        assert_eq!(
            v["properties"]["v"]["const"],
            crate::output::json::SCHEMA_VERSION
        );
    }
}
