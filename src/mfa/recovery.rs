//! Recovery codes: ten per enrolment, 80 random bits each, shown once as
//! `xxxxx-xxxxx-xxxxx-xxxxx` (hex) and stored only as SHA-256 of the account
//! id and the normalised code. 80 bits make an offline search of a leaked
//! hash hopeless without a slow hash (a bcrypt per code would cost ten
//! verifications per attempt on the hashing lane).

use sha2::{Digest, Sha256};

pub const COUNT: usize = 10;
const BYTES: usize = 10;

/// `COUNT` fresh codes, as shown to the user.
pub fn generate() -> Result<Vec<String>, getrandom::Error> {
    (0..COUNT)
        .map(|_| {
            let mut bytes = [0u8; BYTES];
            getrandom::fill(&mut bytes)?;
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            Ok(hex
                .as_bytes()
                .chunks(5)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join("-"))
        })
        .collect()
}

/// The code without separators or spaces, lower-cased; `None` if what is
/// left is not 20 hex digits.
pub fn normalise(raw: &str) -> Option<String> {
    let code: String = raw
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (code.len() == BYTES * 2 && code.bytes().all(|b| b.is_ascii_hexdigit())).then_some(code)
}

/// What is stored of a (normalised) code.
pub fn hash(user_id: i64, normalised: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(user_id.to_be_bytes());
    h.update(normalised.as_bytes());
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_ten_distinct_and_readable_back_however_typed() {
        let codes = generate().unwrap();
        assert_eq!(codes.len(), 10);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 10);
        let c = &codes[0];
        assert_eq!(c.len(), 23);
        let n = normalise(c).unwrap();
        assert_eq!(normalise(&c.to_uppercase().replace('-', " ")).unwrap(), n);
        assert_eq!(normalise("123456"), None);
        assert_eq!(normalise("zzzzz-zzzzz-zzzzz-zzzzz"), None);
    }

    #[test]
    fn the_hash_depends_on_the_account() {
        assert_ne!(hash(1, "a"), hash(2, "a"));
    }
}
