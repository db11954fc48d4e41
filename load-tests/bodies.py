#!/usr/bin/env python3
"""Request bodies for load-tests/run, from a snapshot file.

Writes into OUT: inszs.txt (INSZ sampled evenly over the file, plus some absent ones),
soap-single-N.xml, soap-batch100-N.xml, soap-batch1000-N.xml, rest-batch1000-N.json. Every question uses the reference
date 2026-01-01, so none is refused for its date.
usage: bodies.py SNAPSHOT OUT [SAMPLE]
"""
import json
import os
import sys

snapshot, out = sys.argv[1], sys.argv[2]
sample = int(sys.argv[3]) if len(sys.argv) > 3 else 20000
os.makedirs(out, exist_ok=True)

with open(snapshot, "rb") as f:
    header = json.loads(f.readline())
    persons = header["kbi_snapshot"]["persons"]
    step = max(1, persons // sample)
    inszs = []
    for n, line in enumerate(f):
        if n % step == 0:
            inszs.append(json.loads(line)["insz"])
# One question in ten asks about someone not in the snapshot (answered as not subject).
absent = "97081812768"
inszs = [absent if i % 10 == 9 else x for i, x in enumerate(inszs)]
with open(os.path.join(out, "inszs.txt"), "w") as f:
    f.write("\n".join(inszs) + "\n")

CONTEXT = (
    "<Context><Naam>GeefAdviesInburgeringsplicht</Naam><Versie>01.00.0000</Versie><Bericht>"
    "<Type>VRAAG</Type><Tijdstip><Datum>2026-11-25</Datum><Tijd>09:00:00.000</Tijd></Tijdstip>"
    "<Afzender><Identificatie>demo.kbi-advice</Identificatie><Referte>load-{n}</Referte>"
    "<Hoedanigheid>9999</Hoedanigheid></Afzender></Bericht></Context>"
)


def soap(n, questions):
    vragen = "".join(
        f"<Vraag><Referte>v{i}</Referte><Inhoud><Criteria><INSZ>{insz}</INSZ>"
        f"<Referentiedatum>2026-01-01</Referentiedatum></Criteria></Inhoud></Vraag>"
        for i, insz in enumerate(questions)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:geef="urn:kbi-advice:soap:geefadviesinburgeringsplicht:v01_00"><soapenv:Body>'
        f"<geef:GeefAdviesInburgeringsplicht><Verzoek>{CONTEXT.format(n=n)}<Vragen>{vragen}"
        "</Vragen></Verzoek></geef:GeefAdviesInburgeringsplicht></soapenv:Body></soapenv:Envelope>"
    )


def take(start, count):
    return [inszs[(start + i) % len(inszs)] for i in range(count)]


for n in range(8):
    with open(os.path.join(out, f"soap-single-{n}.xml"), "w") as f:
        f.write(soap(n, take(n * 7, 1)))
    with open(os.path.join(out, f"soap-batch100-{n}.xml"), "w") as f:
        f.write(soap(n, take(n * 100, 100)))
    with open(os.path.join(out, f"soap-batch1000-{n}.xml"), "w") as f:
        f.write(soap(n, take(n * 1000, 1000)))
    with open(os.path.join(out, f"rest-batch1000-{n}.json"), "w") as f:
        json.dump(
            {"questions": [{"insz": x, "date": "2026-01-01"} for x in take(n * 1000, 1000)]}, f
        )
print(f"{len(inszs)} INSZ sampled from {persons} persons into {out}")
