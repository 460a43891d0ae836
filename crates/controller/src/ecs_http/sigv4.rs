//! The SigV4 `Authorization` header every AWS SDK sends:
//! `AWS4-HMAC-SHA256 Credential=AKID/20261128/us-east-1/ecs/aws4_request,
//! SignedHeaders=host;x-amz-date, Signature=hex`. Parsed so a malformed one
//! is refused and the access key id is known; the signature itself is not
//! verified yet (API tokens arrive with the security work).

/// What a well-formed header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub access_key_id: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

/// Why a header is refused: the message of AWS's
/// `IncompleteSignatureException`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

const SCHEME: &str = "AWS4-HMAC-SHA256";

pub fn parse(header: &str) -> Result<Credential, Malformed> {
    let rest = header
        .strip_prefix(SCHEME)
        .filter(|r| r.starts_with(' '))
        .ok_or_else(|| Malformed(format!("Authorization header requires the {SCHEME} scheme")))?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = part.split_once('=').ok_or_else(|| {
            Malformed(format!(
                "'{part}' in the Authorization header is not key=value"
            ))
        })?;
        match key {
            "Credential" => credential = Some(value),
            "SignedHeaders" => signed = Some(value),
            "Signature" => signature = Some(value),
            _ => {}
        }
    }
    let missing =
        |what: &str| Malformed(format!("Authorization header requires '{what}' parameter"));
    let credential = credential.ok_or_else(|| missing("Credential"))?;
    let signed = signed.ok_or_else(|| missing("SignedHeaders"))?;
    let signature = signature.ok_or_else(|| missing("Signature"))?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [key, date, region, service, terminator] = scope.as_slice() else {
        return Err(Malformed(format!(
            "Credential should be scoped to a valid region: '{credential}' is not AKID/date/region/service/aws4_request"
        )));
    };
    if *terminator != "aws4_request" || key.is_empty() || date.len() != 8 {
        return Err(Malformed(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{credential}'"
        )));
    }
    if signature.is_empty() || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Malformed("Signature must be hexadecimal".to_string()));
    }
    Ok(Credential {
        access_key_id: key.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        signed_headers: signed.split(';').map(str::to_string).collect(),
        signature: signature.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sdk_header_parses() {
        let c = parse("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261128/us-east-1/ecs/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7").unwrap();
        assert_eq!(c.access_key_id, "AKIDEXAMPLE");
        assert_eq!(c.region, "us-east-1");
        assert_eq!(c.service, "ecs");
        assert_eq!(c.signed_headers.len(), 4);
    }

    #[test]
    fn malformed_headers_say_what_is_wrong() {
        for (header, says) in [
            ("Basic abc", "scheme"),
            ("AWS4-HMAC-SHA256 SignedHeaders=host, Signature=ab", "'Credential'"),
            ("AWS4-HMAC-SHA256 Credential=AK/20261128/r/ecs/aws4_request, Signature=ab", "'SignedHeaders'"),
            ("AWS4-HMAC-SHA256 Credential=AK/20261128/r/ecs/aws4_request, SignedHeaders=host", "'Signature'"),
            ("AWS4-HMAC-SHA256 Credential=AK/r/ecs, SignedHeaders=host, Signature=ab", "region"),
            ("AWS4-HMAC-SHA256 Credential=AK/20261128/r/ecs/aws4_request, SignedHeaders=host, Signature=zz", "hexadecimal"),
        ] {
            let e = parse(header).unwrap_err();
            assert!(e.0.contains(says), "{header}: {e}");
        }
    }
}
