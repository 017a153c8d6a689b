// Validates recorded REST API responses against the schemas of Airflow's stable REST API v1.
//
// Usage: node tests/api/validate.mjs SPEC.yaml RESPONSES.json
// RESPONSES.json is a list of {"name", "schema", "body"}: each body must validate against
// #/components/schemas/<schema> of the spec. Prints each failure and ends with
// "P passed, F failed"; exits 0 iff F == 0.
import { readFileSync } from 'node:fs';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import YAML from 'yaml';

const [specPath, responsesPath] = process.argv.slice(2);
if (!specPath || !responsesPath) {
	console.error('usage: node validate.mjs SPEC.yaml RESPONSES.json');
	process.exit(2);
}
// OpenAPI 3.0 `nullable: true` next to a $ref/allOf (no `type`) is not something Ajv accepts;
// it means "this schema, or null", which is what the rewrite below says in JSON Schema terms.
function fixNullable(node) {
	if (Array.isArray(node))
		return node.map(fixNullable);
	if (!node || typeof node !== 'object')
		return node;
	const out = {};
	for (const [k, v] of Object.entries(node))
		out[k] = fixNullable(v);
	if (out.nullable === true && out.type === undefined) {
		delete out.nullable;
		return { anyOf: [out, { type: 'null' }] };
	}
	return out;
}
const spec = fixNullable(YAML.parse(readFileSync(specPath, 'utf8')));
// OpenAPI 3.0 schemas: `nullable` is understood by Ajv; `discriminator`, `readOnly` and the
// documentation keywords are not validation rules here.
const ajv = new Ajv({ strict: false, allErrors: true, discriminator: false });
addFormats(ajv);
// Airflow's spec writes "format: datetime" in one place (a typo of date-time); treat it alike.
ajv.addFormat('datetime', ajv.formats['date-time'] ?? true);
ajv.addSchema({ $id: 'spec', components: spec.components }, 'spec');

let passed = 0, failed = 0;
for (const { name, schema, body } of JSON.parse(readFileSync(responsesPath, 'utf8'))) {
	const validate = ajv.getSchema(`spec#/components/schemas/${schema}`);
	if (!validate) {
		console.log(`FAIL ${name}: no schema ${schema} in the spec`);
		failed++;
		continue;
	}
	if (validate(body)) {
		passed++;
	} else {
		failed++;
		console.log(`FAIL ${name} (${schema}):`);
		for (const e of validate.errors)
			console.log(`  ${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`);
	}
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
