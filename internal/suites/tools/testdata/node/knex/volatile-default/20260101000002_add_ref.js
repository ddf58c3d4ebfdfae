exports.up = (knex) => knex.schema.alterTable('big', (t) => { t.uuid('ref').defaultTo(knex.raw('gen_random_uuid()')); });
exports.down = (knex) => knex.schema.alterTable('big', (t) => { t.dropColumn('ref'); });
