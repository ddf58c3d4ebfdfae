exports.up = (pgm) => pgm.addColumn('big', { ref: { type: 'uuid', default: pgm.func('gen_random_uuid()') } });
exports.down = (pgm) => pgm.dropColumn('big', 'ref');
