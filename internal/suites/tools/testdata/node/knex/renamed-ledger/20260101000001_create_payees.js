exports.up = (knex) =>
  knex.schema.createTable('payees', (t) => {
    t.bigIncrements('id');
    t.text('name').notNullable();
  });
exports.down = (knex) => knex.schema.dropTable('payees');
