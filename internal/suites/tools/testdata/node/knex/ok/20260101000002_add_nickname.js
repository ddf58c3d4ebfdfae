exports.up = (knex) => knex.schema.alterTable('big', (t) => { t.text('nickname'); });
exports.down = (knex) => knex.schema.alterTable('big', (t) => { t.dropColumn('nickname'); });
