//! GetRandomPassword's generator, as Secrets Manager documents it: uppercase and lowercase
//! letters, digits and punctuation by default, each type excludable, the space optional, and
//! at least one character of every included type unless `RequireEachIncludedType` is false.
//! The stack's generated secret passwords use it too.

use rand::seq::SliceRandom;

/// Secrets Manager's punctuation set.
pub const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// The longest password GetRandomPassword makes (`PasswordLengthType`).
pub const MAX_LENGTH: usize = 4096;

#[derive(Clone, Debug)]
pub struct PasswordSpec {
    pub length: usize,
    pub exclude_characters: String,
    pub exclude_numbers: bool,
    pub exclude_punctuation: bool,
    pub exclude_uppercase: bool,
    pub exclude_lowercase: bool,
    pub include_space: bool,
    pub require_each_included_type: bool,
}

impl Default for PasswordSpec {
    /// AWS's defaults: 32 characters of every type, one of each at least.
    fn default() -> Self {
        Self {
            length: 32,
            exclude_characters: String::new(),
            exclude_numbers: false,
            exclude_punctuation: false,
            exclude_uppercase: false,
            exclude_lowercase: false,
            include_space: false,
            require_each_included_type: true,
        }
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("Password length must be between 1 and 4096 characters.")]
    Length,
    #[error("The password has no characters to choose from: every character type is excluded.")]
    NothingToChoose,
    #[error("Password length is too short based on the required types.")]
    TooShort,
}

/// A password following `spec`, from the thread's cryptographically secure generator.
pub fn generate(spec: &PasswordSpec) -> Result<String, PasswordError> {
    if !(1..=MAX_LENGTH).contains(&spec.length) {
        return Err(PasswordError::Length);
    }
    let keep = |c: &char| !spec.exclude_characters.contains(*c);
    let mut required: Vec<Vec<char>> = Vec::new();
    if !spec.exclude_lowercase {
        required.push(('a'..='z').filter(keep).collect());
    }
    if !spec.exclude_uppercase {
        required.push(('A'..='Z').filter(keep).collect());
    }
    if !spec.exclude_numbers {
        required.push(('0'..='9').filter(keep).collect());
    }
    if !spec.exclude_punctuation {
        required.push(PUNCTUATION.chars().filter(keep).collect());
    }
    // A type whose every character is excluded cannot be required.
    required.retain(|c| !c.is_empty());
    let mut all: Vec<char> = required.iter().flatten().copied().collect();
    // The space may appear but is not a type that must: AWS lists letters, numbers and
    // punctuation as the required ones.
    if spec.include_space && keep(&' ') {
        all.push(' ');
    }
    if all.is_empty() {
        return Err(PasswordError::NothingToChoose);
    }
    let mut rng = rand::thread_rng();
    let mut out: Vec<char> = Vec::with_capacity(spec.length);
    if spec.require_each_included_type {
        if spec.length < required.len() {
            return Err(PasswordError::TooShort);
        }
        out.extend(required.iter().filter_map(|c| c.choose(&mut rng).copied()));
    }
    while out.len() < spec.length {
        match all.choose(&mut rng) {
            Some(c) => out.push(*c),
            None => break,
        }
    }
    out.shuffle(&mut rng);
    Ok(out.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(p: &str, f: fn(&char) -> bool) -> bool {
        p.chars().any(|c| f(&c))
    }

    #[test]
    fn every_included_type_appears_and_excluded_ones_never() {
        for _ in 0..200 {
            let p = generate(&PasswordSpec {
                length: 4,
                ..PasswordSpec::default()
            })
            .unwrap_or_default();
            assert_eq!(p.chars().count(), 4);
            assert!(has(&p, char::is_ascii_lowercase) && has(&p, char::is_ascii_uppercase));
            assert!(has(&p, char::is_ascii_digit) && has(&p, |c| PUNCTUATION.contains(*c)));
        }
        let p = generate(&PasswordSpec {
            length: 500,
            exclude_characters: "aeiou0".into(),
            exclude_punctuation: true,
            exclude_uppercase: true,
            ..PasswordSpec::default()
        })
        .unwrap_or_default();
        assert!(
            p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert!(!p.contains(['a', 'e', 'i', 'o', 'u', '0']));
    }

    #[test]
    fn impossible_requests_are_refused() {
        let spec = |f: fn(&mut PasswordSpec)| {
            let mut s = PasswordSpec::default();
            f(&mut s);
            generate(&s).err()
        };
        assert_eq!(spec(|s| s.length = 0), Some(PasswordError::Length));
        assert_eq!(spec(|s| s.length = 4097), Some(PasswordError::Length));
        assert_eq!(spec(|s| s.length = 3), Some(PasswordError::TooShort));
        assert_eq!(
            spec(|s| {
                s.length = 3;
                s.require_each_included_type = false;
            }),
            None
        );
        assert_eq!(
            spec(|s| {
                s.exclude_lowercase = true;
                s.exclude_uppercase = true;
                s.exclude_numbers = true;
                s.exclude_punctuation = true;
            }),
            Some(PasswordError::NothingToChoose)
        );
    }
}
