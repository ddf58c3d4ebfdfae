'use strict';
module.exports = {
  async up(queryInterface) {
    await queryInterface.removeColumn('JournalLines', 'memo');
  },
  async down() {},
};
