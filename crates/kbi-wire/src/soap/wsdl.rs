//! The served WSDL: the repository's WSDL with its schema inlined and `soap:address` set to the
//! URL the caller used, so that `?wsdl` is one self-contained document a client can build from.

use std::sync::OnceLock;

/// The WSDL as kept in the repository (imports the XSD beside it).
pub(crate) const WSDL_FILE: &str =
    include_str!("../../../../wsdl/GeefAdviesInburgeringsplicht-01.00.wsdl");
/// The XML Schema of request and reply.
pub(crate) const XSD_FILE: &str =
    include_str!("../../../../wsdl/GeefAdviesInburgeringsplicht-01.00.xsd");

const TYPES_OPEN: &str = "<wsdl:types>";
const TYPES_CLOSE: &str = "</wsdl:types>";
const ADDRESS_OPEN: &str = "<soap:address location=\"";

/// The served WSDL split around the endpoint: `(before, after)`.
fn template() -> &'static (String, String) {
    static TEMPLATE: OnceLock<(String, String)> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let inlined = inline_schema(WSDL_FILE, XSD_FILE);
        split_at_address(&inlined)
    })
}

/// Replaces the content of `wsdl:types` (an import of the XSD file) by the XSD's `xs:schema`
/// element itself. Both files are this crate's own; a unit test proves the markers are there.
fn inline_schema(wsdl: &str, xsd: &str) -> String {
    let schema = xsd.find("<xs:schema").map_or(xsd, |at| &xsd[at..]);
    match (wsdl.find(TYPES_OPEN), wsdl.find(TYPES_CLOSE)) {
        (Some(open), Some(close)) if open < close => {
            let mut out = String::with_capacity(wsdl.len() + schema.len());
            out.push_str(&wsdl[..open + TYPES_OPEN.len()]);
            out.push('\n');
            out.push_str(schema.trim_end());
            out.push('\n');
            out.push_str("  ");
            out.push_str(&wsdl[close..]);
            out
        }
        _ => wsdl.to_string(),
    }
}

fn split_at_address(wsdl: &str) -> (String, String) {
    match wsdl.find(ADDRESS_OPEN) {
        Some(at) => {
            let value_start = at + ADDRESS_OPEN.len();
            let value_end = wsdl[value_start..]
                .find('"')
                .map_or(value_start, |len| value_start + len);
            (
                wsdl[..value_start].to_string(),
                wsdl[value_end..].to_string(),
            )
        }
        None => (wsdl.to_string(), String::new()),
    }
}

/// The self-contained WSDL with `soap:address location` = `endpoint` (attribute-escaped: the
/// endpoint is built from the request's Host header, which the caller controls).
pub fn document(endpoint: &str) -> String {
    let (before, after) = template();
    let mut out = String::with_capacity(before.len() + endpoint.len() + after.len());
    out.push_str(before);
    for c in endpoint.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c if c.is_control() => out.push_str("%20"),
            c => out.push(c),
        }
    }
    out.push_str(after);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_wsdl_inlines_the_schema_and_sets_the_address() {
        let wsdl = document("http://127.0.0.1:9/soap/GeefAdviesInburgeringsplicht-01.00");
        assert!(!wsdl.contains("schemaLocation"), "schema not inlined");
        assert!(!wsdl.contains("xs:import"), "schema not inlined");
        assert!(wsdl.contains("name=\"GeefAdviesInburgeringsplichtResponse\""));
        assert!(wsdl.contains(
            "<soap:address location=\"http://127.0.0.1:9/soap/GeefAdviesInburgeringsplicht-01.00\"/>"
        ));
        assert!(!wsdl.contains("localhost:8080"));
        assert_eq!(wsdl.matches("<?xml").count(), 1);
    }

    #[test]
    fn a_hostile_endpoint_cannot_break_out_of_the_attribute() {
        let wsdl = document("http://x\"/><evil a=\"<&");
        assert!(wsdl.contains("location=\"http://x&quot;/&gt;&lt;evil a=&quot;&lt;&amp;\"/>"));
    }
}
