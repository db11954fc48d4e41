// node-soap against the served WSDL: a client built from the URL alone (no local files, no
// hand-written XML), one call with every case, one JSON row per answer on stdout.
// usage: node call.js WSDL_URL CASES_JSON
const path = require("path");
const soap = require(path.join(process.env.NODE_SOAP_DIR, "node_modules", "soap"));

const [wsdl, casesJson] = process.argv.slice(2);
const cases = JSON.parse(casesJson);

(async () => {
  const client = await soap.createClientAsync(wsdl);
  const vragen = cases.map((c) => ({
    Referte: c.referte,
    Inhoud: { Criteria: c.date !== null ? { INSZ: c.insz, Referentiedatum: c.date }
                                         : { INSZ: c.insz, Premiejaar: c.year } },
  }));
  const [reply] = await client.GeefAdviesInburgeringsplichtAsync({
    Verzoek: {
      Context: {
        Naam: "GeefAdviesInburgeringsplicht",
        Versie: "01.00.0000",
        Bericht: {
          Type: "VRAAG",
          Tijdstip: { Datum: "2026-11-02", Tijd: "09:15:00.000" },
          Afzender: { Identificatie: "demo.kbi-advice", Referte: "node-0001", Hoedanigheid: "9999" },
        },
      },
      Vragen: { Vraag: vragen },
    },
  });
  const repliek = reply.Repliek;
  const antwoorden = [].concat(repliek.Antwoorden.Antwoord);
  const rows = antwoorden.map((a) => {
    if (a.Uitzonderingen) {
      return { referte: a.Referte, error: [].concat(a.Uitzonderingen.Uitzondering)[0].Identificatie };
    }
    const advies = a.Inhoud.Advies;
    return {
      referte: a.Referte,
      insz: advies.INSZ,
      result: advies.Resultaat,
      subject: advies.ValtOnderInburgeringsplicht,
      compliant: advies.VoldoetAanInburgeringsplicht,
      reason: advies.Reden ? advies.Reden.Code : null,
      snapshot_id: advies.Bron.SnapshotId,
    };
  });
  console.log(JSON.stringify({ ontvanger: repliek.Context.Bericht.Ontvanger.Referte, rows }));
})().catch((error) => {
  console.error(String(error && error.stack || error));
  process.exit(1);
});
