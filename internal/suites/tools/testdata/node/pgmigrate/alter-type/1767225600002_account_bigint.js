exports.up = (pgm) => pgm.alterColumn('big', 'account', { type: 'bigint' });
exports.down = (pgm) => pgm.alterColumn('big', 'account', { type: 'integer' });
