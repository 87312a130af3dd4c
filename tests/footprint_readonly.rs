//! The minimal-container promise, proven for real: dbuild's own image (`FROM scratch`, the
//! static binary and nothing else, built by dbuild from the repository's `Dockerfile`) runs with
//! a read-only root file system and no tmpfs, talks to the engine through the mounted socket,
//! fetches the demo repository from the test bed's git daemon into memory, and builds it.
//!
//! The static binary: `$DBUILD_STATIC_BIN` when set (for example the fat-LTO release binary
//! `scripts/build-image.sh` prints), otherwise built here with the `footprint` profile (release
//! without LTO, so a CI run costs about a minute once and seconds after) into its own target
//! directory, `target/footprint` (a nested `cargo build` must not wait on the lock of the
//! `cargo test` that runs this file).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{docker, text, unique};

const MUSL: &str = "x86_64-unknown-linux-musl";
const GNU: &str = "x86_64-unknown-linux-gnu";

/// The static binary under test, built if `$DBUILD_STATIC_BIN` does not name one.
fn static_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("DBUILD_STATIC_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target_dir = root.join("target").join("footprint");
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| text(&o.stdout).lines().any(|l| l.trim() == MUSL))
        .unwrap_or(false);
    let triple = if installed { MUSL } else { GNU };
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(root)
        .args(["build", "--profile", "footprint", "--features", "cli"])
        .args(["--target", triple])
        .env("CARGO_TARGET_DIR", &target_dir);
    if installed {
        // ring compiles C: musl-gcc (Debian: musl-tools) when present, else the default cc.
        if Command::new("musl-gcc").arg("--version").output().is_ok() {
            cmd.env("CC_x86_64_unknown_linux_musl", "musl-gcc");
        }
    } else {
        cmd.env("RUSTFLAGS", "-C target-feature=+crt-static");
    }
    let out = cmd.output().expect("run cargo");
    assert!(
        out.status.success(),
        "building the static binary failed: {}",
        text(&out.stderr)
    );
    target_dir.join(triple).join("footprint").join("dbuild")
}

/// True when the ELF file has no program interpreter (PT_INTERP): nothing is loaded at run
/// time, so it runs in an empty image.
fn is_static_elf(path: &Path) -> bool {
    let b = std::fs::read(path).expect("read the binary");
    assert!(
        b.len() > 64 && &b[..4] == b"\x7fELF" && b[4] == 2,
        "not a 64-bit ELF file"
    );
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(b[32..40].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(54), u16_at(56));
    (0..phnum).all(|i| {
        let o = phoff + i * phentsize;
        u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) != 3 // PT_INTERP
    })
}

struct RemoveImages(Vec<String>);
impl Drop for RemoveImages {
    fn drop(&mut self) {
        for i in &self.0 {
            docker(&["rmi", "-f", i]);
        }
    }
}

#[test]
fn scratch_image_builds_the_demo_read_only() {
    let bed = common::bed();
    let bin = static_binary();
    assert!(
        is_static_elf(&bin),
        "{} is dynamically linked",
        bin.display()
    );

    // dbuild builds its own image from a two-file context: the repository's Dockerfile and
    // the binary.
    let ctx = common::empty_dir("footprint-ctx");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(root.join("Dockerfile"), ctx.join("Dockerfile")).unwrap();
    std::fs::copy(&bin, ctx.join("dbuild")).unwrap();
    let image = format!("dbuild-footprint:{}", unique("self"));
    let built = format!("dbuild-footprint-demo:{}", unique("demo"));
    let _cleanup = RemoveImages(vec![image.clone(), built.clone()]);
    let out = Command::new(&bin)
        .args(["build", "-q", "-t", &image])
        .arg(&ctx)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&ctx).ok();
    assert!(
        out.status.success(),
        "dbuild building its own image: {}",
        text(&out.stderr)
    );

    // The image holds one layer: the binary (nothing else fits in its size).
    let inspect = docker(&[
        "image",
        "inspect",
        "-f",
        "{{len .RootFS.Layers}} {{.Size}}",
        &image,
    ]);
    assert!(inspect.status.success(), "{}", text(&inspect.stderr));
    let bin_size = std::fs::metadata(&bin).unwrap().len();
    let fields: Vec<u64> = text(&inspect.stdout)
        .split_whitespace()
        .map(|f| f.parse().unwrap())
        .collect();
    assert_eq!(fields[0], 1, "one layer");
    assert!(
        fields[1] <= bin_size + 4096,
        "image size {} vs binary {bin_size}",
        fields[1]
    );

    // Read-only root, no tmpfs, no volume but the engine's socket; host network so the
    // container reaches the test bed's git daemon on 127.0.0.1.
    let url = format!("{}/demo.git", bed.git);
    let run = docker(&[
        "run",
        "--rm",
        "--read-only",
        "--network",
        "host",
        "-v",
        "/var/run/docker.sock:/var/run/docker.sock",
        &image,
        "build",
        "--network",
        "none",
        "-t",
        &built,
        &url,
    ]);
    assert!(
        run.status.success(),
        "dbuild in a read-only scratch container: {}{}",
        text(&run.stdout),
        text(&run.stderr)
    );

    // The image it built exists and is the demo (its RUN step ran).
    let from_run = common::run_in(&built, &["cat", "/from-run.txt"]);
    assert_eq!(from_run, "built-by-run");
}
