exports.up = (pgm) => {
  pgm.createTable('payees', { id: 'bigserial primary key', name: { type: 'text', notNull: true } });
};
exports.down = (pgm) => pgm.dropTable('payees');
