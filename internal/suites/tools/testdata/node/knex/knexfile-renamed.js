// A knexfile whose ledger is renamed, as many projects do
// (migrations: { tableName: 'migrations' }): knex then keeps its ledger in
// "migrations" and its lock row in "migrations_lock".
module.exports = {
  client: 'pg',
  connection: process.env.DATABASE_URL,
  migrations: { directory: process.env.MIGRATIONS, tableName: 'migrations' },
};
