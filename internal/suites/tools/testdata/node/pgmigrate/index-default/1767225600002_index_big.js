// node-pg-migrate's default: the migration runs in a transaction.
exports.up = (pgm) => pgm.createIndex('big', 'account', { name: 'big_account_idx' });
exports.down = (pgm) => pgm.dropIndex('big', 'account', { name: 'big_account_idx' });
