//! Escape sequences: reading them out of a value and writing them back in.
//!
//! Owns the translation between a value as sent and its text. Read: `\F\ \S\ \T\ \R\ \E\` become
//! the delimiter they name and `\P\` the truncation character (when the message declares one);
//! `\Xhh..\` becomes the bytes it spells (decoded like the message: UTF-8, else Windows-1252);
//! the formatting commands become plain-text layout (`\.br\`, `\.ce\` a line break, `\.sp n\` n
//! line breaks, at most 100), or vanish where plain text has no equivalent (`\H\ \N\` highlighting,
//! `\.fi\ \.nf\ \.in\ \.ti\ \.sk\`); anything else (`\Cxxyy\`, `\Mxxyyzz\`, `\Z..\`, unknown
//! letters, an escape character without a closing one) is kept verbatim. Written: the delimiters,
//! the escape character, the truncation character and ASCII control characters (CR and LF
//! included) are escaped, so an encoded value never breaks a segment or an MLLP frame.
//!
//! Does not: split values at delimiters (the parser does that first, so an escape sequence never
//! spans two subcomponents).

use crate::decode::decode_lossy;
use crate::delimiters::Delimiters;

/// The most line breaks one `\.sp n\` may produce.
const MAX_SPACE_LINES: usize = 100;

/// The text of a raw subcomponent.
pub(crate) fn unescape(raw: &str, d: &Delimiters) -> String {
    let esc = char::from(d.escape);
    let Some(first) = raw.find(esc) else {
        return raw.to_owned();
    };
    let mut out = String::with_capacity(raw.len());
    out.push_str(&raw[..first]);
    let mut rest = &raw[first..];
    // Invariant: `rest` starts with the escape character.
    while !rest.is_empty() {
        let body = &rest[1..];
        let Some(close) = body.find(esc) else {
            // No closing escape character: the rest is kept as sent.
            out.push_str(rest);
            break;
        };
        let sequence = &body[..close];
        if !expand(sequence, d, &mut out) {
            out.push_str(&rest[..close + 2]);
        }
        let after = &body[close + 1..];
        match after.find(esc) {
            Some(next) => {
                out.push_str(&after[..next]);
                rest = &after[next..];
            }
            None => {
                out.push_str(after);
                break;
            }
        }
    }
    out
}

/// Appends the text of one escape sequence (without its escape characters); false when the
/// sequence is unknown and must be kept verbatim.
fn expand(sequence: &str, d: &Delimiters, out: &mut String) -> bool {
    match sequence {
        "F" => out.push(char::from(d.field)),
        "S" => out.push(char::from(d.component)),
        "T" => out.push(char::from(d.subcomponent)),
        "R" => out.push(char::from(d.repetition)),
        "E" => out.push(char::from(d.escape)),
        "P" => match d.truncation {
            Some(t) => out.push(char::from(t)),
            None => return false,
        },
        "H" | "N" => {}
        _ => {
            if let Some(hex) = sequence.strip_prefix('X') {
                return expand_hex(hex, out);
            }
            if let Some(command) = sequence.strip_prefix('.') {
                return expand_format(command, out);
            }
            return false;
        }
    }
    true
}

fn expand_hex(hex: &str, out: &mut String) -> bool {
    if hex.is_empty() || !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return false;
    }
    let bytes: Vec<u8> = hex
        .as_bytes()
        .chunks_exact(2)
        .map(|pair| (hex_value(pair[0]) << 4) | hex_value(pair[1]))
        .collect();
    out.push_str(&decode_lossy(&bytes));
    true
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        _ => 0,
    }
}

/// The formatted-text commands (HL7 v2 chapter 2, FT data type).
fn expand_format(command: &str, out: &mut String) -> bool {
    let (Some(name), Some(argument)) = (command.get(..2), command.get(2..)) else {
        return false;
    };
    let argument = argument.trim();
    let signed_number = |a: &str| {
        let digits = a.strip_prefix(['+', '-']).unwrap_or(a);
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
    };
    match name {
        "br" | "ce" if argument.is_empty() => out.push('\n'),
        "sp" if argument.is_empty() => out.push('\n'),
        "sp" if argument.bytes().all(|b| b.is_ascii_digit()) => {
            let lines = argument
                .parse::<usize>()
                .unwrap_or(MAX_SPACE_LINES)
                .clamp(1, MAX_SPACE_LINES);
            out.extend(std::iter::repeat_n('\n', lines));
        }
        "fi" | "nf" if argument.is_empty() => {}
        "sk" if argument.is_empty() || argument.bytes().all(|b| b.is_ascii_digit()) => {}
        "in" | "ti" if signed_number(argument) => {}
        _ => return false,
    }
    true
}

/// Appends `value` to `out` with everything escaped that would otherwise read as structure.
pub(crate) fn escape_into(value: &str, d: &Delimiters, out: &mut String) {
    let needs = |b: u8| {
        d.splits(b)
            || b == d.escape
            || Some(b) == d.truncation
            || (b.is_ascii_control() && b != b'\t')
    };
    if !value.bytes().any(needs) {
        out.push_str(value);
        return;
    }
    let esc = char::from(d.escape);
    let mut start = 0;
    for (i, b) in value.bytes().enumerate() {
        if !needs(b) {
            continue;
        }
        out.push_str(&value[start..i]);
        start = i + 1;
        out.push(esc);
        match b {
            _ if b == d.field => out.push('F'),
            _ if b == d.component => out.push('S'),
            _ if b == d.subcomponent => out.push('T'),
            _ if b == d.repetition => out.push('R'),
            _ if b == d.escape => out.push('E'),
            _ if Some(b) == d.truncation => out.push('P'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('X');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0x0F)]));
            }
        }
        out.push(esc);
    }
    out.push_str(&value[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn un(raw: &str) -> String {
        unescape(raw, &Delimiters::default())
    }

    fn esc(value: &str) -> String {
        let mut out = String::new();
        escape_into(value, &Delimiters::default(), &mut out);
        out
    }

    #[test]
    fn delimiters_and_escape() {
        assert_eq!(un(r"A\T\E \F\ \S\ \R\ \E\"), r"A&E | ^ ~ \");
        assert_eq!(esc(r"A&E | ^ ~ \"), r"A\T\E \F\ \S\ \R\ \E\");
    }

    #[test]
    fn hex_formatting_and_highlighting() {
        assert_eq!(un(r"a\X0D0A\b"), "a\r\nb");
        assert_eq!(un(r"\XC3A9\ \XE9\"), "\u{e9} \u{e9}");
        assert_eq!(un(r"one\.br\two\.sp 2\three"), "one\ntwo\n\nthree");
        assert_eq!(un(r"\H\bold\N\ \.in+4\x\.fi\"), "bold x");
        assert_eq!(un(r"\.sp 999999999999999999999999\"), "\n".repeat(100));
    }

    #[test]
    fn unknown_and_unterminated_are_verbatim() {
        assert_eq!(
            un(r"\Q\ \C2842\ \Zabc\ \X0\ \XZZ\ \.zz\"),
            r"\Q\ \C2842\ \Zabc\ \X0\ \XZZ\ \.zz\"
        );
        assert_eq!(un(r"a\b"), r"a\b");
        assert_eq!(un(r"\P\"), r"\P\");
        assert_eq!(un("\\"), "\\");
        assert_eq!(un(r"\\x"), r"\\x");
    }

    #[test]
    fn controls_are_hex_escaped() {
        assert_eq!(esc("a\rb\nc\u{b}\td"), "a\\X0D\\b\\X0A\\c\\X0B\\\td");
        assert_eq!(un(&esc("a\rb\nc\u{b}\u{1c}d")), "a\rb\nc\u{b}\u{1c}d");
    }
}
