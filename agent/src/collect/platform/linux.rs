//! Linux: load from the kernel, a wide list of pseudo filesystems.

/// Load average 1/5/15 minutes.
pub fn load_average() -> Option<[f64; 3]> {
    super::unix_load_average()
}

/// Filesystems with no storage of their own, and mounts under kernel trees.
pub fn is_pseudo_fs(fs: &str, mount: &str) -> bool {
    const PSEUDO: &[&str] = &[
        "autofs",
        "binfmt_misc",
        "bpf",
        "cgroup",
        "cgroup2",
        "configfs",
        "debugfs",
        "devpts",
        "devtmpfs",
        "efivarfs",
        "fusectl",
        "hugetlbfs",
        "mqueue",
        "nsfs",
        "proc",
        "pstore",
        "ramfs",
        "rpc_pipefs",
        "securityfs",
        "selinuxfs",
        "squashfs",
        "sysfs",
        "tmpfs",
        "tracefs",
        "fuse.gvfsd-fuse",
        "fuse.portal",
        "fuse.lxcfs",
        "nfsd",
    ];
    const KERNEL_TREES: &[&str] = &["/proc", "/sys", "/dev", "/run", "/snap"];
    PSEUDO.contains(&fs)
        || KERNEL_TREES
            .iter()
            .any(|t| mount == *t || mount.strip_prefix(t).is_some_and(|r| r.starts_with('/')))
        // Docker and Kubernetes bind-mount single files (/etc/hosts...): not filesystems.
        || matches!(mount, "/etc/hosts" | "/etc/hostname" | "/etc/resolv.conf")
}

pub fn is_loopback(iface: &str) -> bool {
    iface == "lo"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudo_filesystems_and_kernel_trees_are_skipped() {
        assert!(is_pseudo_fs("tmpfs", "/tmp"));
        assert!(is_pseudo_fs("ext4", "/run/user/1000"));
        assert!(is_pseudo_fs("ext4", "/etc/hosts"));
        assert!(!is_pseudo_fs("ext4", "/"));
        assert!(!is_pseudo_fs("xfs", "/srv/runner"));
    }
}
