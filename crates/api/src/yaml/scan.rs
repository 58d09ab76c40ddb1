//! The pre-scan: one linear pass over the text, token by token the way libyaml's scanner (the parser under
//! serde_yaml) splits it, that measures what parsing would cost before the parser runs.
//!
//! Why libyaml's own rules and not a simpler count of brackets: a `[` inside a quoted string, a comment, a
//! block scalar or a block-context plain scalar (`note: see [1`) opens nothing, and a scan that counted it
//! would refuse good documents; a scan that skipped a region libyaml reads as tokens (a quote that is not a
//! quote, a comment that is not a comment) could be walked past by a hostile document. So every region
//! this scan skips is one libyaml skips too: comments start where libyaml's `#` starts one, quoted scalars
//! and block scalars end where libyaml ends them (including its indentation rules, which need the block
//! indentation stack and the "simple key" bookkeeping reproduced here), plain scalars stop where libyaml
//! stops them. Where libyaml would stop with an error, this scan steps over one character and goes on:
//! it may then count more than libyaml would parse, never less.
//!
//! What it measures:
//! - nesting depth: block collections (the indentation stack) plus flow collections. The flow depth is the
//!   one that must be capped before parsing: libyaml checks every open flow level on every token, so
//!   `[[[[...` costs time quadratic in its depth.
//! - tokens (scalars, aliases, collection starts, document starts and the indicators `-` `?` `:` `,`):
//!   every node of a document has at most one indicator before it, so a document of N nodes has at most
//!   2N tokens; the tokens bound what the parser holds in memory before a single value is built.
//! - documents, and aliases where they are refused.

use super::Location;

/// What the scan may find before it stops.
pub(super) struct Allowance {
    /// Deepest nesting of collections.
    pub depth: usize,
    /// Most tokens.
    pub tokens: usize,
    /// Most documents.
    pub documents: usize,
    /// Whether `*alias` is accepted.
    pub aliases: bool,
}

/// What the scan found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Scanned {
    /// Tokens, as counted against [`Allowance::tokens`].
    pub tokens: usize,
    /// Documents.
    pub documents: usize,
    /// Whether the text uses an alias.
    pub aliases: bool,
    /// The deepest nesting seen.
    pub depth: usize,
}

/// Why the scan stopped.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Stop {
    /// Nesting deeper than allowed.
    Depth(Location),
    /// More tokens than allowed.
    Tokens(Location),
    /// More documents than allowed.
    Documents(Location),
    /// An alias where aliases are refused, with its name.
    Alias(Location, String),
}

/// A position libyaml remembers for a "simple key" (a key written without `?`): where a later `:` opens
/// a block mapping.
#[derive(Clone, Copy)]
struct Mark {
    line: usize,
    column: usize,
    index: usize,
}

/// libyaml forgets a simple key after 1024 characters (YAML's limit on implicit keys).
const SIMPLE_KEY_REACH: usize = 1024;

/// The UTF-8 byte-order mark, which libyaml skips at the start of a line (the start of the stream too:
/// serde_yaml sets the encoding, so the reader does not drop it) counting it as a column.
const BOM: &[u8] = "\u{feff}".as_bytes();

struct Scanner<'a> {
    text: &'a [u8],
    allowance: &'a Allowance,
    pos: usize,
    /// 1-based line.
    line: usize,
    /// 0-based column, in characters as libyaml counts them.
    column: usize,
    /// Characters read, for [`SIMPLE_KEY_REACH`].
    index: usize,
    /// Open flow collections.
    flow: usize,
    /// Columns of the open block collections (libyaml's indentation stack); its length is the block depth.
    indents: Vec<usize>,
    /// Whether a simple key may start here (libyaml's `simple_key_allowed`).
    simple_key_allowed: bool,
    /// The possible simple key outside flow collections, the only one that opens block mappings.
    key: Option<Mark>,
    /// Whether a document is open (a token after `---`, or any token after the start or `...`).
    in_document: bool,
    found: Scanned,
}

/// Whether a line break may start with byte `b` (CR, LF, or the first byte of NEL, LS or PS).
fn starts_break(b: u8) -> bool {
    matches!(b, b'\n' | b'\r' | 0xC2 | 0xE2)
}

/// Scans `text`; `Err` names the first limit it exceeds.
pub(super) fn scan(text: &str, allowance: &Allowance) -> Result<Scanned, Stop> {
    let mut s = Scanner {
        text: text.as_bytes(),
        allowance,
        pos: 0,
        line: 1,
        column: 0,
        index: 0,
        flow: 0,
        indents: Vec::new(),
        simple_key_allowed: true,
        key: None,
        in_document: false,
        found: Scanned::default(),
    };
    s.run()?;
    // An empty stream is one empty document to serde_yaml.
    s.found.documents = s.found.documents.max(1);
    Ok(s.found)
}

impl Scanner<'_> {
    fn run(&mut self) -> Result<(), Stop> {
        loop {
            self.skip_to_token();
            if self.flow == 0 {
                self.unroll(self.column);
            }
            let Some(c) = self.peek(0) else {
                return Ok(());
            };
            if self.column == 0 {
                if c == b'%' {
                    // A directive (`%YAML 1.1`) fills its line or is an error.
                    self.close_blocks();
                    self.key = None;
                    self.simple_key_allowed = false;
                    self.skip_line();
                    continue;
                }
                if self.document_marker(b'-') || self.document_marker(b'.') {
                    let start = c == b'-';
                    self.close_blocks();
                    self.key = None;
                    self.simple_key_allowed = false;
                    if start {
                        // An explicit document is a node even when empty.
                        self.begin_document()?;
                        self.token()?;
                    } else {
                        self.in_document = false;
                    }
                    for _ in 0..3 {
                        self.advance();
                    }
                    continue;
                }
            }
            if !self.in_document {
                self.begin_document()?;
            }
            self.fetch(c)?;
        }
    }

    /// One token starting with `c`, in the order libyaml tries them.
    fn fetch(&mut self, c: u8) -> Result<(), Stop> {
        match c {
            b'[' | b'{' => {
                self.save_key();
                self.flow += 1;
                self.simple_key_allowed = true;
                self.token()?;
                self.check_depth()?;
                self.advance();
            }
            b']' | b'}' => {
                if self.flow == 0 {
                    // Outside a flow collection this is an error; libyaml drops the simple key first.
                    self.key = None;
                } else {
                    self.flow -= 1;
                }
                self.simple_key_allowed = false;
                self.advance();
            }
            b',' => {
                if self.flow == 0 {
                    self.key = None;
                }
                self.simple_key_allowed = true;
                self.advance();
                self.token()?;
            }
            b'-' if self.is_blankz(1) => {
                if self.flow == 0 {
                    if self.simple_key_allowed {
                        self.roll(self.column)?;
                    }
                    self.key = None;
                }
                self.simple_key_allowed = true;
                self.advance();
                self.token()?;
            }
            b'?' if self.flow > 0 || self.is_blankz(1) => {
                if self.flow == 0 {
                    if self.simple_key_allowed {
                        self.roll(self.column)?;
                    }
                    self.key = None;
                }
                self.simple_key_allowed = self.flow == 0;
                self.advance();
                self.token()?;
            }
            b':' if self.flow > 0 || self.is_blankz(1) => {
                if self.flow == 0 {
                    match self.key.take() {
                        Some(key) if key.line == self.line && key.index + SIMPLE_KEY_REACH >= self.index => {
                            // The key before this `:` opens (or continues) a block mapping at its column.
                            self.roll(key.column)?;
                            self.simple_key_allowed = false;
                        }
                        _ => {
                            if self.simple_key_allowed {
                                self.roll(self.column)?;
                            }
                            self.simple_key_allowed = true;
                        }
                    }
                } else {
                    self.simple_key_allowed = false;
                }
                self.advance();
                self.token()?;
            }
            b'*' => {
                let at = self.location();
                self.save_key();
                self.simple_key_allowed = false;
                self.advance();
                let name = self.anchor_name();
                // Without a name libyaml stops with an error; there is no alias to count.
                if !name.is_empty() {
                    self.found.aliases = true;
                    if !self.allowance.aliases {
                        return Err(Stop::Alias(at, name));
                    }
                    self.token()?;
                }
            }
            b'&' => {
                self.save_key();
                self.simple_key_allowed = false;
                self.advance();
                self.anchor_name();
            }
            b'!' => {
                self.save_key();
                self.simple_key_allowed = false;
                self.tag();
            }
            b'|' | b'>' if self.flow == 0 => {
                self.key = None;
                self.simple_key_allowed = true;
                self.block_scalar();
                self.token()?;
            }
            b'\'' | b'"' => {
                self.save_key();
                self.simple_key_allowed = false;
                self.quoted(c);
                self.token()?;
            }
            _ if self.starts_plain(c) => {
                self.save_key();
                self.simple_key_allowed = false;
                if self.plain() {
                    self.simple_key_allowed = true;
                }
                self.token()?;
            }
            // A character no token starts with: libyaml stops here with an error.
            _ => self.advance(),
        }
        Ok(())
    }

    fn begin_document(&mut self) -> Result<(), Stop> {
        self.in_document = true;
        self.found.documents += 1;
        if self.found.documents > self.allowance.documents {
            return Err(Stop::Documents(self.location()));
        }
        Ok(())
    }

    fn token(&mut self) -> Result<(), Stop> {
        self.found.tokens += 1;
        if self.found.tokens > self.allowance.tokens {
            return Err(Stop::Tokens(self.location()));
        }
        Ok(())
    }

    fn check_depth(&mut self) -> Result<(), Stop> {
        let depth = self.indents.len() + self.flow;
        self.found.depth = self.found.depth.max(depth);
        if depth > self.allowance.depth {
            return Err(Stop::Depth(self.location()));
        }
        Ok(())
    }

    /// libyaml's `roll_indent`: a block collection opens at `column` when it is deeper than the current one.
    fn roll(&mut self, column: usize) -> Result<(), Stop> {
        if self.flow == 0 && self.indents.last().is_none_or(|&indent| indent < column) {
            self.indents.push(column);
            self.token()?;
            self.check_depth()?;
        }
        Ok(())
    }

    /// libyaml's `unroll_indent`: block collections deeper than `column` close.
    fn unroll(&mut self, column: usize) {
        while self.indents.last().is_some_and(|&indent| indent > column) {
            self.indents.pop();
        }
    }

    /// libyaml's `unroll_indent(-1)` at a directive or document marker: every block collection closes, but
    /// only outside flow collections (inside one, libyaml leaves its indentation as it is).
    fn close_blocks(&mut self) {
        if self.flow == 0 {
            self.indents.clear();
        }
    }

    /// libyaml's indentation: the innermost block collection's column, -1 outside any.
    fn indent(&self) -> isize {
        self.indents.last().map_or(-1, |&indent| indent as isize)
    }

    fn save_key(&mut self) {
        if self.simple_key_allowed && self.flow == 0 {
            self.key = Some(Mark { line: self.line, column: self.column, index: self.index });
        }
    }

    /// Spaces, tabs where libyaml allows them, comments and line breaks up to the next token.
    fn skip_to_token(&mut self) {
        loop {
            if self.column == 0 && self.text[self.pos..].starts_with(BOM) {
                self.pos += BOM.len();
                self.column += 1;
                self.index += 1;
            }
            while let Some(c) = self.peek(0) {
                if c == b' ' || (c == b'\t' && (self.flow > 0 || !self.simple_key_allowed)) {
                    self.advance();
                } else {
                    break;
                }
            }
            if self.peek(0) == Some(b'#') {
                self.skip_line();
            }
            if self.break_len(0) == 0 {
                return;
            }
            self.advance_break();
            if self.flow == 0 {
                self.simple_key_allowed = true;
            }
        }
    }

    /// `&name` and `*name`: libyaml's anchor characters.
    fn anchor_name(&mut self) -> String {
        let start = self.pos;
        while self.peek(0).is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-') {
            self.advance();
        }
        String::from_utf8_lossy(&self.text[start..self.pos]).into_owned()
    }

    /// A tag, up to a blank or a flow indicator (libyaml stops at fewer characters; stopping at the flow
    /// indicators keeps every bracket counted).
    fn tag(&mut self) {
        self.advance();
        while let Some(c) = self.peek(0) {
            if self.is_blankz(0) || matches!(c, b',' | b'[' | b']' | b'{' | b'}') {
                break;
            }
            self.advance();
        }
    }

    /// A quoted scalar, up to its closing quote.
    fn quoted(&mut self, quote: u8) {
        self.advance();
        loop {
            self.skip_run(|b| b == quote || b == b'\\' || starts_break(b));
            let Some(c) = self.peek(0) else {
                return;
            };
            if c == quote {
                self.advance();
                if quote == b'\'' && self.peek(0) == Some(b'\'') {
                    // '' is an escaped quote.
                    self.advance();
                    continue;
                }
                return;
            }
            if c == b'\\' && quote == b'"' {
                self.advance();
            }
            if self.break_len(0) > 0 {
                self.advance_break();
                if self.document_marker(b'-') || self.document_marker(b'.') {
                    // libyaml refuses a document marker inside a quoted scalar; what follows is read as tokens.
                    return;
                }
            } else if self.peek(0).is_some() {
                self.advance();
            }
        }
    }

    /// A literal or folded block scalar: its header line, then every line indented at least as deep as its
    /// content (given by an indentation indicator, or found from its first non-empty line as libyaml does).
    fn block_scalar(&mut self) {
        self.advance();
        let mut increment = 0;
        for _ in 0..2 {
            match self.peek(0) {
                Some(b'+' | b'-') => self.advance(),
                Some(d @ b'1'..=b'9') if increment == 0 => {
                    increment = usize::from(d - b'0');
                    self.advance();
                }
                _ => break,
            }
        }
        while self.is_blank(0) {
            self.advance();
        }
        if self.peek(0) == Some(b'#') {
            self.skip_line();
        }
        if !self.is_blankz(0) {
            // libyaml stops with an error; the rest of the line is read as tokens.
            return;
        }
        if self.break_len(0) > 0 {
            self.advance_break();
        }
        let parent = self.indent();
        let mut indent = if increment == 0 {
            0
        } else if parent >= 0 {
            parent as usize + increment
        } else {
            increment
        };
        if !self.block_scalar_breaks(&mut indent, parent) {
            return;
        }
        while self.column == indent && self.peek(0).is_some() {
            self.skip_line();
            if self.peek(0).is_none() {
                return;
            }
            self.advance_break();
            if !self.block_scalar_breaks(&mut indent, parent) {
                return;
            }
        }
    }

    /// libyaml's `scan_block_scalar_breaks`: empty lines and indentation; settles an undetermined
    /// indentation (0). `false` where libyaml stops with an error (a tab in the indentation).
    fn block_scalar_breaks(&mut self, indent: &mut usize, parent: isize) -> bool {
        let mut max_indent = 0;
        loop {
            while (*indent == 0 || self.column < *indent) && self.peek(0) == Some(b' ') {
                self.advance();
            }
            max_indent = max_indent.max(self.column);
            if (*indent == 0 || self.column < *indent) && self.peek(0) == Some(b'\t') {
                return false;
            }
            if self.break_len(0) == 0 {
                break;
            }
            self.advance_break();
        }
        if *indent == 0 {
            *indent = max_indent.max((parent + 1).max(1) as usize);
        }
        true
    }

    /// Whether a plain scalar starts at `c` (libyaml's test, after every indicator was tried).
    fn starts_plain(&self, c: u8) -> bool {
        let indicator = matches!(
            c,
            b'-' | b'?'
                | b':'
                | b','
                | b'['
                | b']'
                | b'{'
                | b'}'
                | b'#'
                | b'&'
                | b'*'
                | b'!'
                | b'|'
                | b'>'
                | b'\''
                | b'"'
                | b'%'
                | b'@'
                | b'`'
        );
        (!self.is_blankz(0) && !indicator)
            || (c == b'-' && !self.is_blank(1))
            || (self.flow == 0 && matches!(c, b'?' | b':') && !self.is_blankz(1))
    }

    /// A plain scalar, over continuation lines as libyaml reads them; `true` when it ended after a line
    /// break (a simple key may follow).
    fn plain(&mut self) -> bool {
        let indent = self.indent() + 1;
        let mut after_break = false;
        loop {
            if self.column == 0 && (self.document_marker(b'-') || self.document_marker(b'.')) {
                break;
            }
            if self.peek(0) == Some(b'#') {
                break;
            }
            let flow = self.flow > 0;
            loop {
                let start = self.pos;
                self.skip_run(|b| {
                    matches!(b, b' ' | b'\t' | b':')
                        || starts_break(b)
                        || (flow && matches!(b, b',' | b'[' | b']' | b'{' | b'}'))
                });
                if self.pos > start {
                    after_break = false;
                }
                let Some(c) = self.peek(0) else {
                    break;
                };
                if self.is_blankz(0) {
                    break;
                }
                if flow && c == b':' && matches!(self.peek(1), Some(b',' | b'?' | b'[' | b']' | b'{' | b'}')) {
                    // libyaml stops with an error; what follows is read as tokens.
                    return after_break;
                }
                if (c == b':' && self.is_blankz(1)) || (flow && matches!(c, b',' | b'[' | b']' | b'{' | b'}')) {
                    break;
                }
                // A `:` inside the scalar, or a character that starts like a Unicode line break but is not one.
                self.advance();
                after_break = false;
            }
            if !(self.is_blank(0) || self.break_len(0) > 0) {
                break;
            }
            while self.is_blank(0) || self.break_len(0) > 0 {
                if self.break_len(0) > 0 {
                    self.advance_break();
                    after_break = true;
                } else {
                    self.advance();
                }
            }
            if self.flow == 0 && (self.column as isize) < indent {
                break;
            }
        }
        after_break
    }

    fn document_marker(&self, c: u8) -> bool {
        self.column == 0 && self.text[self.pos..].starts_with(&[c, c, c]) && self.is_blankz(3)
    }

    fn location(&self) -> Location {
        Location { line: self.line, column: self.column + 1 }
    }

    fn peek(&self, offset: usize) -> Option<u8> {
        self.text.get(self.pos + offset).copied()
    }

    fn is_blank(&self, offset: usize) -> bool {
        matches!(self.peek(offset), Some(b' ' | b'\t'))
    }

    /// Blank, line break or end of input.
    fn is_blankz(&self, offset: usize) -> bool {
        self.peek(offset).is_none() || self.is_blank(offset) || self.break_len(offset) > 0
    }

    /// Length of the line break at `offset` (libyaml's: CR LF, CR, LF, NEL, LS, PS), 0 if none.
    fn break_len(&self, offset: usize) -> usize {
        let rest = &self.text[(self.pos + offset).min(self.text.len())..];
        match rest {
            [b'\r', b'\n', ..] => 2,
            [b'\r' | b'\n', ..] => 1,
            [0xC2, 0x85, ..] => 2,
            [0xE2, 0x80, 0xA8 | 0xA9, ..] => 3,
            _ => 0,
        }
    }

    /// Steps over one character (not a line break).
    fn advance(&mut self) {
        let width = match self.peek(0) {
            None => return,
            Some(c) if c < 0x80 => 1,
            Some(c) if c >= 0xF0 => 4,
            Some(c) if c >= 0xE0 => 3,
            Some(_) => 2,
        };
        self.pos = (self.pos + width).min(self.text.len());
        self.column += 1;
        self.index += 1;
    }

    /// Steps over one line break.
    fn advance_break(&mut self) {
        self.pos += self.break_len(0);
        self.line += 1;
        self.column = 0;
        self.index += 1;
    }

    /// Steps to the end of the line (not over its break).
    fn skip_line(&mut self) {
        loop {
            self.skip_run(starts_break);
            if self.peek(0).is_none() || self.break_len(0) > 0 {
                return;
            }
            // A character that starts like a Unicode line break but is not one.
            self.advance();
        }
    }

    /// Steps over the bytes before the first one `stop` holds for, counting characters as [`Self::advance`]
    /// does: one tight loop over the long runs of text in comments and scalars instead of a call per
    /// character. `stop` must hold for every byte that starts a line break ([`starts_break`]).
    fn skip_run(&mut self, stop: impl Fn(u8) -> bool) {
        let rest = &self.text[self.pos..];
        let len = rest.iter().position(|&b| stop(b)).unwrap_or(rest.len());
        // UTF-8 continuation bytes are not characters.
        let chars = rest[..len].iter().filter(|&&b| b & 0xC0 != 0x80).count();
        self.pos += len;
        self.column += chars;
        self.index += chars;
    }
}
