//! Field offsets of kernel structures, from the running kernel's BTF.
//!
//! The fork hook receives `struct task_struct *`; reading its `pid` and
//! `tgid` needs their offsets on this very kernel. Instead of compiling
//! against one kernel's headers, user space looks them up in
//! `/sys/kernel/btf/vmlinux` and hands them to the programs.
use btf_rs::{Btf, Type};

use crate::error::{Error, Result};

const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

/// Offsets the programs need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskOffsets {
    /// `task_struct.pid`.
    pub pid: u32,
    /// `task_struct.tgid`.
    pub tgid: u32,
}

/// Reads the offsets from the running kernel's BTF.
pub fn task_offsets() -> Result<TaskOffsets> {
    let btf = Btf::from_file(VMLINUX).map_err(|e| {
        Error::env(format!(
            "kernel BTF: cannot read {VMLINUX} ({e}); a kernel with CONFIG_DEBUG_INFO_BTF=y is required"
        ))
    })?;
    Ok(TaskOffsets {
        pid: member_offset(&btf, "task_struct", "pid")?,
        tgid: member_offset(&btf, "task_struct", "tgid")?,
    })
}

/// Byte offset of member `field` of `struct name` (searching anonymous
/// members too).
fn member_offset(btf: &Btf, name: &str, field: &str) -> Result<u32> {
    let types = btf
        .resolve_types_by_name(name)
        .map_err(|e| Error::env(format!("kernel BTF: no type {name}: {e}")))?;
    for ty in types {
        if let Type::Struct(s) = ty
            && let Some(bits) = find_in(btf, &s, field, 0)
        {
            return Ok(bits / 8);
        }
    }
    Err(Error::env(format!(
        "kernel BTF: struct {name} has no member {field}"
    )))
}

fn find_in(btf: &Btf, s: &btf_rs::Struct, field: &str, base_bits: u32) -> Option<u32> {
    for m in &s.members {
        let name = btf.resolve_name(m).unwrap_or_default();
        if name == field {
            return Some(base_bits + m.bit_offset());
        }
        if name.is_empty()
            && let Ok(Type::Struct(inner) | Type::Union(inner)) = btf.resolve_chained_type(m)
            && let Some(b) = find_in(btf, &inner, field, base_bits + m.bit_offset())
        {
            return Some(b);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_kernel_has_task_offsets() {
        // Needs only read access to the BTF file, not root.
        if std::path::Path::new(VMLINUX).exists() {
            let o = task_offsets().unwrap();
            assert!(o.pid > 0 && o.tgid == o.pid + 4, "{o:?}");
        }
    }
}
