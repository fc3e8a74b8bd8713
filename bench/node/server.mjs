// PostGraphile 5 over rujuk's tables: the baseline of bench/run.py (intake insert and nested page).
//
//   DATABASE_URL=postgresql://postgres@127.0.0.1:5432/rujuk_bench PORT=5678 \
//     node --require ./polyfill.cjs server.mjs
//
// Amber preset, no plugins, no auth: PostGraphile's plain `createComplaint` mutation and its
// `allHouseholds` connection with the foreign-key relations it derives from the schema.
import { createServer } from "node:http";

import { makePgService } from "postgraphile/adaptors/pg";
import { grafserv } from "postgraphile/grafserv/node";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { postgraphile } from "postgraphile";

const connectionString = process.env.DATABASE_URL;
if (!connectionString) {
  console.error("set DATABASE_URL");
  process.exit(2);
}
const host = process.env.HOST ?? "127.0.0.1";
const port = Number(process.env.PORT ?? 5678);
const poolSize = Number(process.env.POOL_SIZE ?? 10);

const preset = {
  extends: [PostGraphileAmberPreset],
  pgServices: [makePgService({ connectionString, schemas: ["public"], poolConfig: { max: poolSize } })],
  grafserv: { host, port, graphqlPath: "/graphql", watch: false },
  grafast: { explain: false },
};

const pgl = postgraphile(preset);
const serv = pgl.createServ(grafserv);
const server = createServer();
server.on("error", (error) => {
  console.error(error);
  process.exit(1);
});
await serv.addTo(server);
// build the schema before accepting traffic, so the first request is not the one that pays for it
await pgl.getSchema();
server.listen(port, host, () => console.log(`postgraphile listening on http://${host}:${port}/graphql`));

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, async () => {
    server.close();
    await pgl.release();
    process.exit(0);
  });
}
