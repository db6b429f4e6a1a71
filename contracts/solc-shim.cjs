#!/usr/bin/env node
// A `solc` command for py-solc-x backed by the pinned npm solc (solc-js, the same compiler
// built to WebAssembly). py-solc-x needs only `--version` and `--standard-json`. The `solcjs`
// CLI prints a non-JSON line on stdout, so this calls the solc-js library directly.
"use strict";
const solc = require("solc");

const args = process.argv.slice(2);
if (args.includes("--version")) {
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
  process.exit(0);
}
if (!args.includes("--standard-json")) {
  process.stderr.write(`solc-shim: only --version and --standard-json are supported (got: ${args.join(" ")})\n`);
  process.exit(2);
}
let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
// Sources the input names by URL or imports it does not carry (static analysers such as
// Slither's crytic-compile send paths, not contents) are read from files under the working
// directory, never outside it. The project's own build inlines every source, so it reads none.
const fs = require("fs");
const path = require("path");
const root = process.cwd();
function readSource(name) {
  const full = path.resolve(root, name);
  if (full !== root && !full.startsWith(root + path.sep)) {
    return { error: `solc-shim: ${name} is outside ${root}` };
  }
  try {
    return { contents: fs.readFileSync(full, "utf8") };
  } catch (err) {
    return { error: `solc-shim: cannot read ${name}: ${err.code || err.message}` };
  }
}
process.stdin.on("end", () => {
  process.stdout.write(solc.compile(input, { import: readSource }));
});
