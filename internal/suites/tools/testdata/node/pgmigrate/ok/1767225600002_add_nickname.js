exports.up = (pgm) => pgm.addColumn('big', { nickname: { type: 'text' } });
exports.down = (pgm) => pgm.dropColumn('big', 'nickname');
