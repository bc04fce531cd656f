// Validates Gateway API resources (JSON lines on stdin) against the Gateway API CRD schemas
// shipped by @kubernetes-models/gateway-api; prints one JSON problem per line, exits 1 if any.
// Usage: node validate_gateway.mjs <node_modules dir> < docs.jsonl
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const modules = process.argv[2];
const v1 = await import(
  pathToFileURL(join(modules, "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/index.js")).href
);
let failed = 0;
for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const doc = JSON.parse(line);
  const name = `${doc.kind}/${doc.metadata?.name}`;
  const Model = doc.apiVersion === "gateway.networking.k8s.io/v1" ? v1[doc.kind] : undefined;
  let problem = Model ? null : `no schema for ${doc.apiVersion} ${doc.kind}`;
  if (Model) {
    try {
      new Model(doc).validate();
    } catch (error) {
      problem = error.message;
    }
  }
  if (problem) {
    failed += 1;
    console.log(JSON.stringify({ resource: name, problem }));
  }
}
process.exit(failed ? 1 : 0);
