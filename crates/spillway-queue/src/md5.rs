//! The digests SDKs verify: MD5OfMessageBody, MD5OfMessageAttributes and
//! MD5OfMessageSystemAttributes, exactly as the shared `sqs-md5.md` describes (SQS Developer
//! Guide, "Calculating the MD5 message digest for message attributes"; lengths big-endian as in
//! the Java SDK's MessageMD5ChecksumHandler).

use md5::{Digest, Md5};

use crate::model::MessageAttributes;

const STRING_TRANSPORT: u8 = 1;
const BINARY_TRANSPORT: u8 = 2;

/// Lowercase hex MD5 of the body's UTF-8 bytes.
pub fn md5_of_body(body: &str) -> String {
    hex::encode(Md5::digest(body.as_bytes()))
}

/// Lowercase hex MD5 of the attributes, or None when there are none (SQS then omits the field).
pub fn md5_of_attributes(attributes: &MessageAttributes) -> Option<String> {
    if attributes.is_empty() {
        return None;
    }
    let mut md5 = Md5::new();
    // BTreeMap iterates names in ascending byte order, which equals the Java SDK's UTF-16 order
    // for the ASCII characters attribute names may contain.
    for (name, value) in attributes {
        update_length_prefixed(&mut md5, name.as_bytes());
        update_length_prefixed(&mut md5, value.data_type.as_bytes());
        if value.data_type.starts_with("Binary") {
            md5.update([BINARY_TRANSPORT]);
            update_length_prefixed(&mut md5, value.binary_value.as_deref().unwrap_or_default());
        } else {
            md5.update([STRING_TRANSPORT]);
            update_length_prefixed(
                &mut md5,
                value.string_value.as_deref().unwrap_or_default().as_bytes(),
            );
        }
    }
    Some(hex::encode(md5.finalize()))
}

fn update_length_prefixed(md5: &mut Md5, bytes: &[u8]) {
    // Validation limits every part to far below 4 GiB, so the length always fits.
    let length = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    md5.update(length.to_be_bytes());
    md5.update(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MessageAttributeValue;

    fn attrs(entries: &[(&str, MessageAttributeValue)]) -> MessageAttributes {
        entries
            .iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect()
    }

    fn typed(data_type: &str, value: &str) -> MessageAttributeValue {
        MessageAttributeValue {
            data_type: data_type.into(),
            string_value: Some(value.into()),
            binary_value: None,
        }
    }

    #[test]
    fn body_vectors() {
        assert_eq!(md5_of_body("test"), "098f6bcd4621d373cade4e832627b4f6");
        assert_eq!(md5_of_body("derp"), "58fd9edd83341c29f1aebba81c31e257");
        assert_eq!(
            md5_of_body("Test message."),
            "e4e68fb7bd0e697a0ae8f1bb342846b3"
        );
    }

    #[test]
    fn no_attributes_no_digest() {
        assert_eq!(md5_of_attributes(&MessageAttributes::new()), None);
    }

    #[test]
    fn attribute_vectors() {
        let cases = [
            (
                attrs(&[("timestamp", MessageAttributeValue::number("1493147359900"))]),
                "235c5c510d26fb653d073faed50ae77c",
            ),
            (
                attrs(&[("timestamp", MessageAttributeValue::number("1493147359901"))]),
                "994258b45346a2cc3f9cbb611aa7af30",
            ),
            (
                attrs(&[(
                    "SOME_Valid.attribute-Name",
                    MessageAttributeValue::number("1493147359900"),
                )]),
                "36655e7e9d7c0e8479fa3f3f42247ae7",
            ),
            (
                attrs(&[("timestamp", typed("Number.java.lang.Long", "1493147359900"))]),
                "2e2e4876d8e0bd6b8c2c8f556831c349",
            ),
            (
                attrs(&[
                    (
                        "id",
                        MessageAttributeValue::string("2018fc74-4f77-1a5a-1be0-c2d037d5052b"),
                    ),
                    (
                        "contentType",
                        MessageAttributeValue::string("application/json"),
                    ),
                    ("timestamp", typed("Number.java.lang.Long", "1602845432024")),
                ]),
                "b12289320bb6e494b18b645ef562b4a9",
            ),
            (
                attrs(&[
                    (
                        "id",
                        MessageAttributeValue::string("453ae55e-f03b-21a6-a4b1-70c2e2e8fe71"),
                    ),
                    (
                        "mybin",
                        MessageAttributeValue::binary(b"kekchebukek".to_vec()),
                    ),
                    ("timestamp", typed("Number.java.lang.Long", "1603134247654")),
                    (
                        "contentType",
                        MessageAttributeValue::string("application/json"),
                    ),
                ]),
                "049075255ebc53fb95f7f9f3cedf3c50",
            ),
        ];
        for (attributes, expected) in cases {
            assert_eq!(md5_of_attributes(&attributes).as_deref(), Some(expected));
        }
    }
}
