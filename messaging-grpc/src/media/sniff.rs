//! The real type of uploaded bytes, whatever name or content type they came with.

/// What we accept for upload: what Twilio delivers as MMS images on every carrier
/// (its "fully supported" types). Other types Twilio accepts (audio, video, vCard, PDF)
/// are transcoded or dropped per carrier with a 500 KB limit, so we refuse them rather
/// than send something that arrives broken.
pub const ALLOWED_TYPES: &[&str] = &["image/jpeg", "image/png", "image/gif"];

/// The complete signature each accepted type starts with. `infer` matches on shorter
/// prefixes (any bytes starting `GIF` pass as a GIF), so both must agree.
const SIGNATURES: &[(&[u8], &str)] = &[
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"\xFF\xD8\xFF", "image/jpeg"),
];

/// The sniffed content type if it is one we accept.
pub fn sniff_allowed(bytes: &[u8]) -> Option<&'static str> {
    let kind = infer::get(bytes)?.mime_type();
    SIGNATURES
        .iter()
        .find(|(signature, t)| *t == kind && bytes.starts_with(signature))
        .map(|(_, t)| *t)
        .filter(|t| ALLOWED_TYPES.contains(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_content_not_by_name() {
        let png = [
            0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, b'I', b'H', b'D', b'R',
        ];
        assert_eq!(sniff_allowed(&png), Some("image/png"));
        assert_eq!(
            sniff_allowed(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F']),
            Some("image/jpeg")
        );
        assert_eq!(sniff_allowed(b"GIF89a\x01\x00\x01\x00"), Some("image/gif"));
        assert_eq!(
            sniff_allowed(b"\x7fELF\x02\x01\x01\x00\x00\x00"),
            None,
            "an executable is not an image"
        );
        assert_eq!(sniff_allowed(b"MZ\x90\x00"), None);
        assert_eq!(
            sniff_allowed(b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
            None
        );
        assert_eq!(sniff_allowed(b""), None);
        // Prefixes that fooled the type library alone.
        assert_eq!(sniff_allowed(b"GIF? no, plain text"), None);
        assert_eq!(sniff_allowed(b"\x89PNG but not really"), None);
        assert_eq!(sniff_allowed(b"GIF87a\x01\x00\x01\x00"), Some("image/gif"));
    }
}
