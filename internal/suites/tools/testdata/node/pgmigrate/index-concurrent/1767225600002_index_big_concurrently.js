// node-pg-migrate's way to run a statement outside a transaction.
exports.up = (pgm) => {
  pgm.noTransaction();
  pgm.createIndex('big', 'account', { name: 'big_account_cidx', concurrently: true });
};
exports.down = (pgm) => {
  pgm.noTransaction();
  pgm.dropIndex('big', 'account', { name: 'big_account_cidx', concurrently: true });
};
