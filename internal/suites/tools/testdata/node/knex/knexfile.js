// The knexfile of a project that reads its connection from DATABASE_URL, as
// knex's docs suggest; MIGRATIONS picks the directory of the scenario.
module.exports = {
  client: 'pg',
  connection: process.env.DATABASE_URL,
  migrations: { directory: process.env.MIGRATIONS },
};
