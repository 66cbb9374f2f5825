//! Splits a FHIRPath expression into tokens.

use super::ast::Dialect;

/// One token of an expression.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Token {
    /// An identifier and whether it was written with backticks (and so is never a keyword).
    Ident(String, bool),
    This,
    Str(String),
    Num(String),
    Dot,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Eq,
    NotEq,
    Minus,
    Pipe,
}

impl Token {
    /// The token as an error message quotes it.
    pub(super) fn describe(&self) -> String {
        match self {
            Token::Ident(name, _) => format!("'{name}'"),
            Token::This => "'$this'".to_string(),
            Token::Str(s) => format!("string '{s}'"),
            Token::Num(n) => format!("number {n}"),
            Token::Dot => "'.'".to_string(),
            Token::LParen => "'('".to_string(),
            Token::RParen => "')'".to_string(),
            Token::LBracket => "'['".to_string(),
            Token::RBracket => "']'".to_string(),
            Token::Comma => "','".to_string(),
            Token::Eq => "'='".to_string(),
            Token::NotEq => "'!='".to_string(),
            Token::Minus => "'-'".to_string(),
            Token::Pipe => "'|'".to_string(),
        }
    }
}

/// Tokenizes `text`. A symbol the dialect has no use for is refused here, where its position is
/// still known, rather than as a puzzling token later.
pub(super) fn lex(text: &str, dialect: Dialect) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        match c {
            c if c.is_whitespace() => i += 1,
            '.' => push(&mut tokens, &mut i, Token::Dot),
            '(' => push(&mut tokens, &mut i, Token::LParen),
            ')' => push(&mut tokens, &mut i, Token::RParen),
            '[' => push(&mut tokens, &mut i, Token::LBracket),
            ']' => push(&mut tokens, &mut i, Token::RBracket),
            ',' => push(&mut tokens, &mut i, Token::Comma),
            '=' => push(&mut tokens, &mut i, Token::Eq),
            '-' => push(&mut tokens, &mut i, Token::Minus),
            '|' if dialect == Dialect::Search => push(&mut tokens, &mut i, Token::Pipe),
            '!' if chars.get(i + 1) == Some(&'=') => {
                tokens.push(Token::NotEq);
                i += 2;
            }
            '\'' => {
                let (s, next) = quoted(&chars, i, '\'')?;
                tokens.push(Token::Str(s));
                i = next;
            }
            '`' => {
                let (s, next) = quoted(&chars, i, '`')?;
                tokens.push(Token::Ident(s, true));
                i = next;
            }
            '$' => {
                let end = scan(&chars, i + 1, |c| c.is_ascii_alphanumeric() || c == '_');
                let word: String = chars[i + 1..end].iter().collect();
                if word != "this" {
                    return Err(format!("unsupported variable '${word}'"));
                }
                tokens.push(Token::This);
                i = end;
            }
            c if c.is_ascii_digit() => {
                let mut end = scan(&chars, i, |c| c.is_ascii_digit());
                // A '.' is part of the number only when digits follow; otherwise it is navigation.
                if chars.get(end) == Some(&'.')
                    && chars.get(end + 1).is_some_and(char::is_ascii_digit)
                {
                    end = scan(&chars, end + 1, |c| c.is_ascii_digit());
                }
                tokens.push(Token::Num(chars[i..end].iter().collect()));
                i = end;
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let end = scan(&chars, i, |c| c.is_ascii_alphanumeric() || c == '_');
                tokens.push(Token::Ident(chars[i..end].iter().collect(), false));
                i = end;
            }
            other => {
                return Err(format!(
                    "unexpected character '{other}' at position {}",
                    i + 1
                ))
            }
        }
    }
    Ok(tokens)
}

fn push(tokens: &mut Vec<Token>, i: &mut usize, token: Token) {
    tokens.push(token);
    *i += 1;
}

fn scan(chars: &[char], from: usize, accept: impl Fn(char) -> bool) -> usize {
    let mut end = from;
    while chars.get(end).is_some_and(|&c| accept(c)) {
        end += 1;
    }
    end
}

/// Reads a quoted string or backtick identifier starting at `start` (the opening quote), handling
/// FHIRPath's backslash escapes; returns the text and the index after the closing quote.
fn quoted(chars: &[char], start: usize, quote: char) -> Result<(String, usize), String> {
    let mut out = String::new();
    let mut i = start + 1;
    loop {
        match chars.get(i) {
            None => return Err(format!("unterminated {quote}-quoted text")),
            Some(&c) if c == quote => return Ok((out, i + 1)),
            Some('\\') => {
                let escaped = match chars.get(i + 1) {
                    Some('n') => '\n',
                    Some('r') => '\r',
                    Some('t') => '\t',
                    Some('f') => '\u{c}',
                    Some('u') => {
                        let hex: String = chars.get(i + 2..i + 6).unwrap_or(&[]).iter().collect();
                        let code = u32::from_str_radix(&hex, 16)
                            .ok()
                            .filter(|_| hex.len() == 4)
                            .and_then(char::from_u32)
                            .ok_or_else(|| format!("invalid escape '\\u{hex}'"))?;
                        out.push(code);
                        i += 6;
                        continue;
                    }
                    Some(&c @ ('\'' | '"' | '`' | '\\' | '/')) => c,
                    Some(c) => return Err(format!("invalid escape '\\{c}'")),
                    None => return Err(format!("unterminated {quote}-quoted text")),
                };
                out.push(escaped);
                i += 2;
            }
            Some(&c) => {
                out.push(c);
                i += 1;
            }
        }
    }
}
