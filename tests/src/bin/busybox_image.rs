//! `orca-busybox-image DIR`: writes the small busybox OCI image archive the
//! tests use (from Debian's busybox-static) into DIR and prints its path. The
//! quickstart loads it with `orca image load`, so trying orca needs no
//! registry and no network.

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: orca-busybox-image DIR"))?;
    std::fs::create_dir_all(&dir)?;
    let path = orca_tests::registry::build_busybox_oci_archive(std::path::Path::new(&dir))?;
    println!("{}", path.display());
    Ok(())
}
