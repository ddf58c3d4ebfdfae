exports.up = (pgm) => pgm.createIndex('small', 'v', { name: 'small_v_idx' });
exports.down = (pgm) => pgm.dropIndex('small', 'v', { name: 'small_v_idx' });
