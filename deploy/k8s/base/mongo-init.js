// Run by the mongodb-init Job (mongodb.yaml) as root against mongodb-0; safe to re-run.
// Credentials from the environment, not the command line (visible in the process list).
db.getSiblingDB("admin").auth(process.env.ROOT_USERNAME, process.env.ROOT_PASSWORD);
const members = [0, 1, 2].map((i) => ({ _id: i, host: `mongodb-${i}.mongodb:27017` }));
try {
  rs.status();
} catch (error) {
  // NotYetInitialized (94): this is the first run.
  if (error.code !== 94) throw error;
  rs.initiate({ _id: "rs0", members });
}
while (!rs.status().members.some((m) => m.stateStr === "PRIMARY")) {
  sleep(1000);
}
// Writes must go to the primary, which may be another member than mongodb-0.
const primary = rs.status().members.find((m) => m.stateStr === "PRIMARY").name;
const admin = new Mongo(`mongodb://${primary}/admin?directConnection=true`).getDB("admin");
admin.auth(process.env.ROOT_USERNAME, process.env.ROOT_PASSWORD);
const app = admin.getSiblingDB(process.env.APP_DB);
// readWrite for the services; dbAdmin for `micro-db setup` (validators, indexes).
const roles = [{ role: "readWrite", db: app.getName() }, { role: "dbAdmin", db: app.getName() }];
if (app.getUser(process.env.APP_USERNAME)) {
  app.updateUser(process.env.APP_USERNAME, { pwd: process.env.APP_PASSWORD, roles });
} else {
  app.createUser({ user: process.env.APP_USERNAME, pwd: process.env.APP_PASSWORD, roles });
}
print(`rs0 primary ${primary}; user ${process.env.APP_USERNAME} on ${app.getName()}`);
