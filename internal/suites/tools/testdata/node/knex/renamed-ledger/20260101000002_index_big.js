// knex's default: the migration runs in a transaction.
exports.up = (knex) => knex.schema.alterTable('big', (t) => { t.index(['account'], 'big_account_idx'); });
exports.down = (knex) => knex.schema.alterTable('big', (t) => { t.dropIndex(['account'], 'big_account_idx'); });
