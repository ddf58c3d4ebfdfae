exports.up = (knex) => knex.schema.alterTable('big', (t) => { t.bigInteger('account').notNullable().alter(); });
exports.down = (knex) => knex.schema.alterTable('big', (t) => { t.integer('account').notNullable().alter(); });
