//! Loading a stack file: syntax, `${env:...}` interpolation, typing, then semantic validation.
//! Every failure becomes a [`Diagnostic`] with file, line, column and field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnostic, FieldPath, LoadError, Segment};
use crate::locate::SourceMap;
use crate::model::{PolicyDocument, Stack};
use crate::resource::ResourceId;
use crate::template;
use crate::validate;

/// The file name `spillway up` and `spillway validate` look for in a directory.
pub const STACK_FILE: &str = "spillway.toml";

/// A stack that loaded and validated.
#[derive(Clone, Debug)]
pub struct LoadedStack {
    /// The stack file.
    pub file: PathBuf,
    /// The directory relative paths in the file are resolved against.
    pub dir: PathBuf,
    pub stack: Stack,
    /// Resources in dependency order: everything a resource refers to comes before it.
    pub order: Vec<ResourceId>,
    /// Policy documents named by `file = ...` entries, keyed by the path as written.
    pub policy_files: BTreeMap<PathBuf, PolicyDocument>,
}

impl LoadedStack {
    /// The stack's name: `[stack] name`, or the directory's name.
    pub fn name(&self) -> String {
        self.stack.stack.name.clone().unwrap_or_else(|| {
            self.dir
                .canonicalize()
                .ok()
                .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "stack".to_owned())
        })
    }

    /// Where spillway keeps this stack's state.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.join(&self.stack.stack.state_dir)
    }

    /// A path written in the stack file, made absolute against the stack's directory.
    pub fn path(&self, p: &Path) -> PathBuf {
        self.dir.join(p)
    }
}

/// Finds the stack file for `target`, which is either a stack file or a directory holding one.
pub fn stack_file(target: &Path) -> PathBuf {
    match target {
        t if t == Path::new(".") || t.as_os_str().is_empty() => PathBuf::from(STACK_FILE),
        t if t.is_dir() => t.join(STACK_FILE),
        t => t.to_owned(),
    }
}

/// Loads `target` (a file or a directory with a `spillway.toml`) using the process environment.
pub fn load(target: &Path) -> Result<LoadedStack, LoadError> {
    let file = stack_file(target);
    let text = std::fs::read_to_string(&file).map_err(|source| LoadError::Io {
        path: file.clone(),
        source,
    })?;
    load_str(&file, &text, &|name| std::env::var(name).ok())
}

/// Loads stack text as if it were the file `file`, with `env` answering `${env:NAME}`.
pub fn load_str(
    file: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<LoadedStack, LoadError> {
    let invalid = |position, field, message| {
        LoadError::Invalid(vec![Diagnostic::new(file, position, field, message)])
    };
    let map = match SourceMap::parse(text) {
        Ok(map) => map,
        Err(e) => {
            let position = e
                .span()
                .map(|s| crate::diagnostic::Position::of_offset(text, s.start));
            let message = e.message().trim().replace('\n', "; ");
            return Err(invalid(position, None, format!("invalid TOML: {message}")));
        }
    };
    let mut raw: toml::Value = toml::from_str(text)
        .map_err(|e| invalid(None, None, format!("invalid TOML: {}", e.message())))?;

    // ${env:...} everywhere, and the places of every resource reference.
    let mut diags = Vec::new();
    let mut refs = Vec::new();
    interpolate(
        &mut raw,
        &FieldPath::root(),
        env,
        &mut |path, problem| {
            diags.push(Diagnostic::new(
                file,
                map.position(&path),
                Some(path.to_string()),
                problem,
            ));
        },
        &mut refs,
    );
    if !diags.is_empty() {
        return Err(LoadError::Invalid(diags));
    }

    let stack: Stack = match serde_path_to_error::deserialize(raw) {
        Ok(s) => s,
        Err(e) => {
            let path = convert_path(e.path());
            let message = e.inner().message().to_owned();
            return Err(LoadError::Invalid(vec![type_error(
                file, &map, path, &message,
            )]));
        }
    };

    let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let dir = if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    };
    // Absolute, so that child processes started in other working directories find the files.
    let dir = dir.canonicalize().unwrap_or(dir);
    let mut loaded = LoadedStack {
        file: file.to_owned(),
        dir,
        stack,
        order: Vec::new(),
        policy_files: BTreeMap::new(),
    };
    let diags = validate::check(&mut loaded, &map, &refs);
    if diags.is_empty() {
        Ok(loaded)
    } else {
        Err(LoadError::Invalid(diags))
    }
}

/// A reference found in the file, with where it was written.
#[derive(Clone, Debug)]
pub struct FoundRef {
    pub path: FieldPath,
    pub kind: String,
    pub name: String,
    pub attr: String,
}

fn interpolate(
    v: &mut toml::Value,
    path: &FieldPath,
    env: &dyn Fn(&str) -> Option<String>,
    report: &mut dyn FnMut(FieldPath, String),
    refs: &mut Vec<FoundRef>,
) {
    match v {
        toml::Value::String(s) => {
            match template::interpolate_env(s, env) {
                Ok((out, missing)) => {
                    for name in missing {
                        report(
                            path.clone(),
                            format!(
                                "environment variable {name} is not set (write ${{env:{name}:-default}} for a fallback)"
                            ),
                        );
                    }
                    *s = out;
                }
                Err(e) => return report(path.clone(), e.to_string()),
            }
            match template::references(s) {
                Ok(found) => refs.extend(found.into_iter().map(|r| FoundRef {
                    path: path.clone(),
                    kind: r.kind.to_owned(),
                    name: r.name.to_owned(),
                    attr: r.attr.to_owned(),
                })),
                Err(e) => report(path.clone(), e.to_string()),
            }
        }
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate(item, &path.index(i), env, report, refs);
            }
        }
        toml::Value::Table(t) => {
            for (k, item) in t.iter_mut() {
                interpolate(item, &path.key(k.clone()), env, report, refs);
            }
        }
        _ => {}
    }
}

fn convert_path(p: &serde_path_to_error::Path) -> FieldPath {
    use serde_path_to_error::Segment as S;
    FieldPath(
        p.iter()
            .filter_map(|s| match s {
                S::Map { key } => Some(Segment::Key(key.clone())),
                S::Seq { index } => Some(Segment::Index(*index)),
                S::Enum { .. } | S::Unknown => None,
            })
            .collect(),
    )
}

/// Turns serde's messages into "expected X, found Y" with the field that was wrong.
fn type_error(file: &Path, map: &SourceMap<'_>, path: FieldPath, message: &str) -> Diagnostic {
    let backticked = |s: &str| {
        s.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let field = rest.split('`').next().unwrap_or_default().to_owned();
        let expected = rest
            .split_once("expected")
            .map(|(_, e)| backticked(e))
            .unwrap_or_default();
        // serde_path_to_error stops at the table holding the unknown key.
        let full = if path.0.last() == Some(&Segment::Key(field.clone())) {
            path
        } else {
            path.key(field)
        };
        let msg = if expected.is_empty() {
            "unknown field; this table takes no fields".to_owned()
        } else {
            format!("unknown field; expected one of {}", expected.join(", "))
        };
        return Diagnostic::new(file, map.key_position(&full), Some(full.to_string()), msg);
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or_default();
        let position = map.position(&path);
        return Diagnostic::new(
            file,
            position,
            Some(path.key(field).to_string()),
            "required field is missing".to_owned(),
        );
    }
    let reshaped = ["invalid type: ", "invalid value: ", "unknown variant "]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.rsplit_once(", expected "))
        .map(|(found, expected)| {
            format!(
                "expected {}, found {}",
                expected.replace('`', "\""),
                found.replace('`', "")
            )
        });
    Diagnostic::new(
        file,
        map.position(&path),
        Some(path.to_string()),
        reshaped.unwrap_or_else(|| message.to_owned()),
    )
}
