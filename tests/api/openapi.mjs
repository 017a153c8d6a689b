// Checks sluice's own OpenAPI document: valid (swagger-parser), and listing exactly the routes
// the server has.
//
// Usage: node tests/api/openapi.mjs OPENAPI.yaml ROUTES.json
// ROUTES.json is a list of [method, path] pairs (paths under /api/v1). Prints the problems and
// ends with "P passed, F failed"; exits 0 iff F == 0.
import { readFileSync } from 'node:fs';
import SwaggerParser from '@apidevtools/swagger-parser';

const [docPath, routesPath] = process.argv.slice(2);
let passed = 0, failed = 0;
const fail = (msg) => { console.log(`FAIL ${msg}`); failed++; };

let api;
try {
	api = await SwaggerParser.validate(docPath);
	passed++;
} catch (e) {
	fail(`the document is not valid OpenAPI: ${e.message}`);
}
if (api) {
	const documented = new Set();
	for (const [path, item] of Object.entries(api.paths))
		for (const m of ['get', 'post', 'put', 'patch', 'delete'])
			if (item[m])
				documented.add(`${m.toUpperCase()} ${path}`);
	const served = new Set(JSON.parse(readFileSync(routesPath, 'utf8')).map(([m, p]) => `${m} ${p}`));
	for (const r of served)
		documented.has(r) ? passed++ : fail(`served but not documented: ${r}`);
	for (const r of documented)
		served.has(r) ? passed++ : fail(`documented but not served: ${r}`);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
