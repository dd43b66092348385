//! From a function's `code` to a command: a Cargo package is built (its binary is the
//! bootstrap), a directory's `bootstrap` is run as it is, and nodejs/python functions run
//! spillway's own bootstrap for that language, which loads the handler.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::error::FunctionsError;
use crate::sandbox::{self, Isolation, Plan};
use crate::spec::{FunctionSpec, Runtime};

const NODE_BOOTSTRAP: &str = include_str!("../runtimes/nodejs/bootstrap.mjs");
const PYTHON_BOOTSTRAP: &str = include_str!("../runtimes/python/bootstrap.py");

/// How to start an instance.
#[derive(Clone, Debug)]
pub(crate) struct Launch {
    pub program: PathBuf,
    pub args: Vec<PathBuf>,
    /// `LAMBDA_TASK_ROOT` and the working directory.
    pub task_root: PathBuf,
    /// Extra environment for this runtime.
    pub env: Vec<(&'static str, String)>,
    /// The sandbox every instance is started in.
    pub sandbox: Option<Arc<Plan>>,
}

fn prepare_error(spec: &FunctionSpec, detail: impl Into<String>) -> FunctionsError {
    FunctionsError::Prepare {
        function: spec.name.clone(),
        detail: detail.into(),
    }
}

/// Writes the shipped bootstraps under `state_dir/runtimes` (every start, so an upgrade of
/// spillway upgrades them).
pub(crate) fn install_runtimes(state_dir: &Path) -> Result<PathBuf, FunctionsError> {
    let dir = state_dir.join("runtimes");
    for (sub, file, text) in [
        ("nodejs", "bootstrap.mjs", NODE_BOOTSTRAP),
        ("python", "bootstrap.py", PYTHON_BOOTSTRAP),
    ] {
        let d = dir.join(sub);
        std::fs::create_dir_all(&d).map_err(FunctionsError::io(&d))?;
        let path = d.join(file);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text) {
            std::fs::write(&path, text).map_err(FunctionsError::io(&path))?;
        }
    }
    // Resolved, as the code is (`FunctionSpec::resolved`): the bootstrap's path is passed to
    // the runtime inside the instance's mount namespace.
    Ok(std::fs::canonicalize(&dir).unwrap_or(dir))
}

/// Gives `launch` its sandbox: the program by its absolute path, and what its instances may
/// read besides the system's directories — the code, the program (a built binary), the
/// language runtime's installation and spillway's bootstrap for it.
pub(crate) fn sandboxed(
    mut launch: Launch,
    spec: &FunctionSpec,
    isolation: &Isolation,
    state_dir: &Path,
) -> Result<Launch, FunctionsError> {
    launch.program = sandbox::resolve_program(&launch.program);
    let mut readable = vec![launch.task_root.clone(), launch.program.clone()];
    if spec.runtime != Runtime::Provided {
        readable.extend(sandbox::runtime_prefixes(&launch.program));
        readable.extend(
            launch
                .args
                .iter()
                .filter_map(|a| a.parent().map(Path::to_path_buf)),
        );
    }
    // Module directories the stack points the function at (Lambda's layers stand in this
    // place): what its `NODE_PATH` or `PYTHONPATH` names is the function's to read.
    for (k, v) in &spec.environment {
        if k == "NODE_PATH" || k == "PYTHONPATH" {
            readable.extend(std::env::split_paths(v).filter(|p| p.is_absolute()));
        }
    }
    // Nothing granted may hold spillway's own files. The code directory is the function's
    // own: if it holds the state directory, the stack is laid out wrong and nothing would be
    // private, so it is refused. Anything else is left out, with a warning.
    if sandbox::exposes_spillway(&launch.task_root, state_dir) {
        return Err(prepare_error(
            spec,
            format!(
                "its code directory {} contains spillway's state directory {}: the function could read every secret; give it a directory of its own",
                launch.task_root.display(),
                state_dir.display()
            ),
        ));
    }
    readable.retain(|p| {
        let exposes = sandbox::exposes_spillway(p, state_dir);
        if exposes {
            tracing::warn!(
                function = %spec.name,
                "not letting it read {}: it holds spillway's own files",
                p.display()
            );
        }
        !exposes
    });
    if isolation.namespaces {
        // The function's own user has no passwd entry, and runtimes ask for a home directory
        // (Node's `os.homedir()` throws without one; the AWS SDKs look for `~/.aws`). Its /tmp
        // is private, so nothing another process planted can be found there.
        launch.env.push(("HOME", "/tmp".into()));
    }
    let plan = isolation
        .plan(&spec.name, &readable, &launch.task_root, state_dir)
        .map_err(|e| prepare_error(spec, e))?;
    launch.sandbox = Some(Arc::new(plan));
    Ok(launch)
}

/// Whether `code` is a Cargo package spillway builds.
pub fn is_cargo_package(code: &Path) -> bool {
    code.join("Cargo.toml").is_file()
}

/// Resolves (and for Cargo packages, builds) what runs `spec`.
pub(crate) async fn prepare(
    spec: &FunctionSpec,
    runtimes: &Path,
    release: bool,
) -> Result<Launch, FunctionsError> {
    match spec.runtime {
        Runtime::Provided => {
            if is_cargo_package(&spec.code) {
                let program = cargo_build(spec, release).await?;
                return Ok(Launch {
                    program,
                    args: Vec::new(),
                    task_root: spec.code.clone(),
                    env: Vec::new(),
                    sandbox: None,
                });
            }
            let (program, task_root) = if spec.code.is_dir() {
                (spec.code.join("bootstrap"), spec.code.clone())
            } else {
                let parent = spec
                    .code
                    .parent()
                    .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
                (spec.code.clone(), parent)
            };
            // A missing bootstrap is not fatal here: Lambda reports it on invoke
            // (Runtime.InvalidEntrypoint), and a user may be about to build it.
            if !program.is_file() {
                tracing::warn!(
                    function = %spec.name,
                    "{} does not exist yet; invocations fail until it does",
                    program.display()
                );
            }
            Ok(Launch {
                program,
                args: Vec::new(),
                task_root,
                env: Vec::new(),
                sandbox: None,
            })
        }
        Runtime::Nodejs => {
            npm_install(spec).await?;
            Ok(Launch {
                program: PathBuf::from("node"),
                args: vec![runtimes.join("nodejs").join("bootstrap.mjs")],
                task_root: spec.code.clone(),
                env: vec![
                    ("AWS_EXECUTION_ENV", "AWS_Lambda_nodejs".into()),
                    (
                        "NODE_PATH",
                        spec.code.join("node_modules").display().to_string(),
                    ),
                ],
                sandbox: None,
            })
        }
        Runtime::Python => Ok(Launch {
            program: PathBuf::from("python3"),
            args: vec![runtimes.join("python").join("bootstrap.py")],
            task_root: spec.code.clone(),
            env: vec![
                ("AWS_EXECUTION_ENV", "AWS_Lambda_python".into()),
                ("PYTHONUNBUFFERED", "1".into()),
                ("PYTHONDONTWRITEBYTECODE", "1".into()),
            ],
            sandbox: None,
        }),
    }
}

/// A Node.js function with a `package.json` gets its dependencies installed when it has no
/// `node_modules` yet — what a deployment package would carry on Lambda (`npm ci` with a lock
/// file, `npm install` without; dev dependencies left out). An existing `node_modules` is the
/// user's and is left alone.
async fn npm_install(spec: &FunctionSpec) -> Result<(), FunctionsError> {
    if !spec.code.join("package.json").is_file() || spec.code.join("node_modules").exists() {
        return Ok(());
    }
    let verb = if spec.code.join("package-lock.json").is_file() {
        "ci"
    } else {
        "install"
    };
    tracing::info!(function = %spec.name, "installing its npm dependencies (npm {verb})");
    let status = tokio::process::Command::new("npm")
        .arg(verb)
        .args(["--omit=dev", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&spec.code)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .status()
        .await
        .map_err(|e| prepare_error(spec, format!("cannot run npm: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(prepare_error(
            spec,
            format!("npm {verb} failed ({status}); its errors are above"),
        ))
    }
}

/// `cargo build` of the package; cargo's progress goes to spillway's stderr, its JSON messages
/// name the executable. A package with several binaries must call one `bootstrap` (what
/// cargo-lambda deploys).
async fn cargo_build(spec: &FunctionSpec, release: bool) -> Result<PathBuf, FunctionsError> {
    let manifest = spec.code.join("Cargo.toml");
    let mut cmd =
        tokio::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.arg("build")
        .arg("--message-format=json-render-diagnostics")
        .arg("--manifest-path")
        .arg(&manifest);
    if release {
        cmd.arg("--release");
    }
    tracing::info!(function = %spec.name, "building {}", manifest.display());
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| prepare_error(spec, format!("cannot run cargo: {e}")))?;
    let Some(stdout) = child.stdout.take() else {
        return Err(prepare_error(spec, "cargo's output was not captured"));
    };
    let canonical = std::fs::canonicalize(&manifest).unwrap_or(manifest.clone());
    let mut executables: Vec<(String, PathBuf)> = Vec::new();
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let ours = msg["manifest_path"]
            .as_str()
            .is_some_and(|p| Path::new(p) == canonical || Path::new(p) == manifest);
        if let (true, Some(exe), Some(name)) = (
            ours,
            msg["executable"].as_str(),
            msg["target"]["name"].as_str(),
        ) {
            executables.push((name.to_owned(), PathBuf::from(exe)));
        }
    }
    let status = child
        .wait()
        .await
        .map_err(|e| prepare_error(spec, format!("cargo: {e}")))?;
    if !status.success() {
        return Err(prepare_error(
            spec,
            format!("cargo build failed ({status}); its errors are above"),
        ));
    }
    match executables.as_slice() {
        [] => Err(prepare_error(spec, "the package builds no binary")),
        [(_, exe)] => Ok(exe.clone()),
        many => many
            .iter()
            .find(|(n, _)| n == "bootstrap")
            .map(|(_, e)| e.clone())
            .ok_or_else(|| {
                prepare_error(
                    spec,
                    "the package builds several binaries; name the function's one `bootstrap`",
                )
            }),
    }
}
