//! Splits expression text into tokens that remember where they came from, so a syntax error
//! can quote the source the way DynamoDB does (`token: "-", near: "book-price"`).

use super::{ExprError, ExprKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    /// `[A-Za-z_][A-Za-z0-9_]*`: a name, a function, or a keyword (AND, OR, ...).
    Ident,
    /// `#` followed by name characters.
    NamePlaceholder,
    /// `:` followed by name characters.
    ValuePlaceholder,
    /// Decimal digits (only meaningful as a list index).
    Digits,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Dot,
    Comma,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Plus,
    Minus,
    /// Any other character; always a syntax error where it stands.
    Other,
    Eof,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

fn name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Tokenizes `text`; the last token is always `Eof` (positioned at the end).
pub(crate) fn lex(text: &str) -> Vec<Token> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(text.len() / 2 + 1);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
            i += 1;
            continue;
        }
        let start = i;
        let run = |mut j: usize, pred: fn(u8) -> bool| {
            while j < bytes.len() && pred(bytes[j]) {
                j += 1;
            }
            j
        };
        let (tok, end) = match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => (Tok::Ident, run(i + 1, name_char)),
            b'0'..=b'9' => (Tok::Digits, run(i + 1, |c| c.is_ascii_digit())),
            b'#' => (Tok::NamePlaceholder, run(i + 1, name_char)),
            b':' => (Tok::ValuePlaceholder, run(i + 1, name_char)),
            b'(' => (Tok::LParen, i + 1),
            b')' => (Tok::RParen, i + 1),
            b'[' => (Tok::LBracket, i + 1),
            b']' => (Tok::RBracket, i + 1),
            b'.' => (Tok::Dot, i + 1),
            b',' => (Tok::Comma, i + 1),
            b'=' => (Tok::Eq, i + 1),
            b'+' => (Tok::Plus, i + 1),
            b'-' => (Tok::Minus, i + 1),
            b'<' => match bytes.get(i + 1) {
                Some(b'>') => (Tok::Ne, i + 2),
                Some(b'=') => (Tok::Le, i + 2),
                _ => (Tok::Lt, i + 1),
            },
            b'>' => match bytes.get(i + 1) {
                Some(b'=') => (Tok::Ge, i + 2),
                _ => (Tok::Gt, i + 1),
            },
            _ => {
                // One whole (possibly multi-byte) character.
                let len = text[i..].chars().next().map_or(1, char::len_utf8);
                (Tok::Other, i + len)
            }
        };
        out.push(Token { tok, start, end });
        i = end;
    }
    out.push(Token {
        tok: Tok::Eof,
        start: text.len(),
        end: text.len(),
    });
    out
}

/// A cursor over the tokens of one expression.
pub(crate) struct Cursor<'t> {
    pub text: &'t str,
    pub kind: ExprKind,
    tokens: Vec<Token>,
    pos: usize,
}

impl<'t> Cursor<'t> {
    pub fn new(text: &'t str, kind: ExprKind) -> Cursor<'t> {
        Cursor {
            text,
            kind,
            tokens: lex(text),
            pos: 0,
        }
    }

    pub fn peek(&self) -> Token {
        self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    pub fn peek_at(&self, ahead: usize) -> Token {
        self.tokens[(self.pos + ahead).min(self.tokens.len() - 1)]
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn next(&mut self) -> Token {
        let t = self.peek();
        if self.pos < self.tokens.len() - 1 {
            self.pos += 1;
        }
        t
    }

    pub fn slice(&self, t: Token) -> &'t str {
        &self.text[t.start..t.end]
    }

    /// Whether the next token is the keyword `word` (keywords ignore case).
    pub fn at_keyword(&self, word: &str) -> bool {
        let t = self.peek();
        t.tok == Tok::Ident && self.slice(t).eq_ignore_ascii_case(word)
    }

    pub fn eat(&mut self, tok: Tok) -> bool {
        if self.peek().tok == tok {
            self.next();
            true
        } else {
            false
        }
    }

    pub fn expect(&mut self, tok: Tok) -> Result<Token, ExprError> {
        if self.peek().tok == tok {
            Ok(self.next())
        } else {
            Err(self.syntax_error())
        }
    }

    /// DynamoDB's syntax error for the next token: the token itself (`<EOF>` at the end) and
    /// the source from the token before it to the token after it.
    pub fn syntax_error(&self) -> ExprError {
        let at = self.pos.min(self.tokens.len() - 1);
        let here = self.tokens[at];
        let first = if at > 0 {
            self.tokens[at - 1].start
        } else {
            here.start
        };
        let last = match self.tokens.get(at + 1) {
            Some(next) if here.tok != Tok::Eof && next.tok != Tok::Eof => next.end,
            _ => here.end,
        };
        let token = if here.tok == Tok::Eof {
            "<EOF>"
        } else {
            self.slice(here)
        };
        let near = &self.text[first..last];
        ExprError::invalid(
            self.kind,
            format!("Syntax error; token: \"{token}\", near: \"{near}\""),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str, skip: usize) -> String {
        let mut c = Cursor::new(text, ExprKind::Update);
        for _ in 0..skip {
            c.next();
        }
        c.syntax_error().to_string()
    }

    #[test]
    fn syntax_errors_quote_the_neighbourhood() {
        assert_eq!(
            err("SET book-price = :p", 2),
            "Invalid UpdateExpression: Syntax error; token: \"-\", near: \"book-price\""
        );
        assert_eq!(
            err("SET a = :v,", 5),
            "Invalid UpdateExpression: Syntax error; token: \"<EOF>\", near: \",\""
        );
        assert_eq!(
            err("@a", 0),
            "Invalid UpdateExpression: Syntax error; token: \"@\", near: \"@a\""
        );
    }

    #[test]
    fn operators_lex_greedily() {
        let toks: Vec<Tok> = lex("a<>b<=c>=d<e>f").into_iter().map(|t| t.tok).collect();
        assert_eq!(
            toks,
            vec![
                Tok::Ident,
                Tok::Ne,
                Tok::Ident,
                Tok::Le,
                Tok::Ident,
                Tok::Ge,
                Tok::Ident,
                Tok::Lt,
                Tok::Ident,
                Tok::Gt,
                Tok::Ident,
                Tok::Eof
            ]
        );
    }
}
