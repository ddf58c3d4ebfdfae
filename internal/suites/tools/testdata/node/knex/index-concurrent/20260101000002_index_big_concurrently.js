// knex's way to run a statement outside a transaction.
exports.config = { transaction: false };
exports.up = (knex) => knex.raw('CREATE INDEX CONCURRENTLY big_account_cidx ON big (account)');
exports.down = (knex) => knex.raw('DROP INDEX CONCURRENTLY big_account_cidx');
