//! Counting the JSON elements of a request body as its bytes arrive, before anything is
//! parsed: a `serde_json::Value` costs 30–100 bytes of memory per element, so a 16 MiB
//! body of `0,` pairs would take some 300 MiB once parsed. The scan allocates nothing and
//! refuses the body as soon as it holds more than its caps allow.
//!
//! An element is every value (string, number, literal, array, object) and every object
//! key. Strings and their escapes are skipped, so brackets and commas inside them count
//! for nothing. The scan does not validate: whatever it lets through is parsed afterwards,
//! and invalid JSON is refused there.

/// Deepest nesting accepted: serde_json's own recursion limit, so a body the parser would
/// refuse as too deep is refused before its elements are counted.
pub(super) const MAX_DEPTH: u32 = 128;

/// What one body may hold.
#[derive(Debug, Clone, Copy)]
pub(super) struct Caps {
    /// Elements in the whole body.
    pub(super) total: u64,
    /// When the body is an array: at most this many items, each of at most this many
    /// elements (the item itself included).
    pub(super) items: Option<(u64, u64)>,
}

/// Why a body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Excess {
    /// More elements than `Caps::total`.
    Elements(u64),
    /// More array items than allowed.
    Items(u64),
    /// The item at this index (from 0) holds more elements than allowed.
    ItemElements(u64, u64),
    /// Nested deeper than [`MAX_DEPTH`].
    Depth,
}

/// The scan's state between chunks of a body.
#[derive(Debug)]
pub(super) struct Scan {
    caps: Caps,
    in_string: bool,
    escaped: bool,
    in_scalar: bool,
    depth: u32,
    /// Whether the first value is an array; unknown before it starts.
    top_is_array: Option<bool>,
    total: u64,
    items: u64,
    item_elements: u64,
}

impl Scan {
    /// A scan held to `caps`.
    pub(super) fn new(caps: Caps) -> Self {
        Scan {
            caps,
            in_string: false,
            escaped: false,
            in_scalar: false,
            depth: 0,
            top_is_array: None,
            total: 0,
            items: 0,
            item_elements: 0,
        }
    }

    /// Counts the elements that start in `bytes`, the next piece of the body.
    pub(super) fn feed(&mut self, bytes: &[u8]) -> Result<(), Excess> {
        for &b in bytes {
            if self.in_string {
                self.string_byte(b);
                continue;
            }
            if self.in_scalar && is_scalar_byte(b) {
                continue;
            }
            self.in_scalar = false;
            match b {
                b'"' => {
                    self.element(false)?;
                    self.in_string = true;
                }
                b'[' | b'{' => {
                    self.element(b == b'[')?;
                    self.depth += 1;
                    if self.depth > MAX_DEPTH {
                        return Err(Excess::Depth);
                    }
                }
                b']' | b'}' => self.depth = self.depth.saturating_sub(1),
                b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
                    self.element(false)?;
                    self.in_scalar = true;
                }
                // White space, separators, and bytes the parser will refuse.
                _ => {}
            }
        }
        Ok(())
    }

    fn string_byte(&mut self, b: u8) {
        if self.escaped {
            self.escaped = false;
        } else if b == b'\\' {
            self.escaped = true;
        } else if b == b'"' {
            self.in_string = false;
        }
    }

    /// One element starts at the current depth; `array` when it is an array.
    fn element(&mut self, array: bool) -> Result<(), Excess> {
        self.total += 1;
        if self.total > self.caps.total {
            return Err(Excess::Elements(self.caps.total));
        }
        if self.depth == 0 && self.top_is_array.is_none() {
            self.top_is_array = Some(array);
        }
        let Some((max_items, max_elements)) = self.caps.items else {
            return Ok(());
        };
        if self.top_is_array != Some(true) || self.depth == 0 {
            return Ok(());
        }
        if self.depth == 1 {
            self.items += 1;
            self.item_elements = 0;
            if self.items > max_items {
                return Err(Excess::Items(max_items));
            }
        }
        self.item_elements += 1;
        if self.item_elements > max_elements {
            return Err(Excess::ItemElements(self.items - 1, max_elements));
        }
        Ok(())
    }
}

/// Bytes that continue a number or a literal (`true`, `false`, `null`, `-1.5e+3`).
fn is_scalar_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: Caps = Caps {
        total: u64::MAX,
        items: Some((u64::MAX, u64::MAX)),
    };

    fn count(text: &str) -> (u64, u64) {
        let mut s = Scan::new(OPEN);
        s.feed(text.as_bytes()).unwrap();
        (s.total, s.items)
    }

    #[test]
    fn counts_values_and_keys_but_nothing_inside_strings() {
        assert_eq!(count("[]"), (1, 0));
        assert_eq!(count("[1, 2.5e-3, true, null, \"x\"]"), (6, 5));
        assert_eq!(count(r#"{"a": [1, {"b": false}]}"#), (7, 0));
        assert_eq!(count(r#"["[1,2,{", "\"],[", "\\"]"#), (4, 3));
        assert_eq!(
            count(r#"[{"kind": "vacancy", "id": "V-1", "data": {}}]"#),
            (8, 1)
        );
    }

    #[test]
    fn a_body_split_anywhere_counts_the_same() {
        let text = r#"[{"a": "x\"y\\", "b": [10, -2, true]}, "s", 123456]"#;
        let whole = count(text);
        for cut in 0..text.len() {
            let mut s = Scan::new(OPEN);
            s.feed(&text.as_bytes()[..cut]).unwrap();
            s.feed(&text.as_bytes()[cut..]).unwrap();
            assert_eq!((s.total, s.items), whole, "cut at {cut}");
        }
    }

    #[test]
    fn refuses_past_each_cap() {
        let caps = Caps {
            total: 100,
            items: Some((3, 4)),
        };
        let feed = |text: &str| Scan::new(caps).feed(text.as_bytes());
        assert_eq!(feed("[1, [2, 3, 4], 5]"), Ok(()));
        assert_eq!(feed("[1, 2, 3, 4]"), Err(Excess::Items(3)));
        assert_eq!(feed("[0, [1, 2, 3, 4]]"), Err(Excess::ItemElements(1, 4)));
        assert_eq!(feed(&"0 ".repeat(101)), Err(Excess::Elements(100)));
        // Not an array: only the total applies.
        assert_eq!(feed(r#"{"a": [1, 2, 3, 4, 5, 6]}"#), Ok(()));
        let deep = "[".repeat(MAX_DEPTH as usize + 1);
        assert_eq!(Scan::new(OPEN).feed(deep.as_bytes()), Err(Excess::Depth));
        let ok = "[".repeat(MAX_DEPTH as usize);
        assert_eq!(Scan::new(OPEN).feed(ok.as_bytes()), Ok(()));
    }
}
