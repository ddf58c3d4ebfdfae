exports.up = (knex) => knex.schema.alterTable('small', (t) => { t.index(['v'], 'small_v_idx'); });
exports.down = (knex) => knex.schema.alterTable('small', (t) => { t.dropIndex(['v'], 'small_v_idx'); });
