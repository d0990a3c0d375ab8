// Check KQL with Microsoft's Kusto.Language (parse + semantic analysis) against table schemas.
// stdin: {"tables": {"AWSCloudTrail": {"Col": "type", ...}}, "functions": [...], "queries": [{"name": "...", "query": "..."}]}
// stdout: [{"name": "...", "diagnostics": [{"severity", "code", "message", "start", "length"}]}]
"use strict";
const path = require("path");
const base = path.join(__dirname, "node_modules", "@kusto", "language-service-next");
require(path.join(base, "bridge.js"));
require(path.join(base, "Kusto.Language.Bridge.js"));
const K = Kusto.Language;

function readStdin() {
  return require("fs").readFileSync(0, "utf8");
}

function main() {
  const input = JSON.parse(readStdin());
  const tables = Object.entries(input.tables || {}).map(([name, cols]) => {
    const schema = "(" + Object.entries(cols).map(([c, t]) => `['${c}']:${t}`).join(", ") + ")";
    return new K.Symbols.TableSymbol.$ctor7(name, schema, null);
  });
  const functions = (input.functions || []).map(
    (f) => new K.Symbols.FunctionSymbol.$ctor16(f.name, f.parameters, f.body, null));
  const db = new K.Symbols.DatabaseSymbol.$ctor2(null, "db", tables.concat(functions));
  const globals = K.GlobalState.Default.WithDatabase(db);
  const out = [];
  for (const q of input.queries) {
    const code = K.KustoCode.ParseAndAnalyze(q.query, globals);
    const diags = code.GetDiagnostics();
    const list = [];
    for (let i = 0; i < diags.Count; i++) {
      const d = diags.getItem(i);
      list.push({severity: d.Severity, code: d.Code, message: d.Message, start: d.Start, length: d.Length});
    }
    out.push({name: q.name, diagnostics: list});
  }
  process.stdout.write(JSON.stringify(out));
}

main();
