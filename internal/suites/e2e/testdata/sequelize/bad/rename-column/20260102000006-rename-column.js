'use strict';
module.exports = {
  async up(queryInterface) {
    await queryInterface.renameColumn('JournalLines', 'memo', 'description');
  },
  async down() {},
};
