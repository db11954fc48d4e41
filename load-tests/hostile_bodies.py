#!/usr/bin/env python3
"""Hostile SOAP bodies of at most SIZE bytes, the kinds of benches/soap.rs `soap_inline_bound`:
what a body the server parses on its network thread (kbi_wire::soap::INLINE_MAX_BYTES) can cost.

    python3 load-tests/hostile_bodies.py BODIES_DIR SIZE OUT_DIR

Starts from BODIES_DIR/soap-single-0.xml (load-tests/bodies.py) and writes OUT_DIR/hostile-NAME.xml.
`AUDIT=off HOSTILE=OUT_DIR python3 load-tests/callgrind.py …` then counts each one's instructions.
"""
import os
import sys

bodies, size, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
os.makedirs(out, exist_ok=True)
valid = open(os.path.join(bodies, "soap-single-0.xml")).read()
insz = open(os.path.join(bodies, "inszs.txt")).read().split()[0]
room = size - len(valid) - len("<soapenv:Header></soapenv:Header>")


def fill(unit):
    return unit * (room // len(unit))


def in_header(inner):
    return valid.replace("<soapenv:Body>", f"<soapenv:Header>{inner}</soapenv:Header><soapenv:Body>", 1)


attributes = "".join(f' a{i}=""' for i in range(63))
declarations = "".join(f' xmlns:p{i}="u"' for i in range(31))
nest = "<a>" * 28 + "</a>" * 28
vraag = (f"<Vraag><Referte>q</Referte><Inhoud><Criteria><INSZ>{insz}</INSZ>"
         "<Referentiedatum>2026-01-01</Referentiedatum></Criteria></Inhoud></Vraag>")
cases = {
    "empty_elements": in_header(fill("<h/>")),
    "attributes": in_header(fill(f"<h{attributes}/>")),
    "namespace_declarations": in_header(fill(f"<h{declarations}/>")),
    "nesting": in_header(fill(nest)),
    "comments": in_header(fill("<!---->")),
    "character_references": valid.replace(">v0<", ">" + fill("&#49;") + "<", 1),
    "long_value": valid.replace(">v0<", ">" + fill("7") + "<", 1),
    "questions": valid.replace("<Vragen>", "<Vragen>" + vraag * min(room // len(vraag), 999), 1),
}
for name, body in cases.items():
    assert len(body.encode()) <= size, (name, len(body))
    with open(os.path.join(out, f"hostile-{name}.xml"), "w") as f:
        f.write(body)
print(f"{len(cases)} hostile bodies of at most {size} bytes in {out}")
