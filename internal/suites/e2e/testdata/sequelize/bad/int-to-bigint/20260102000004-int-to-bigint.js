'use strict';
module.exports = {
  async up(queryInterface, Sequelize) {
    await queryInterface.changeColumn('JournalLines', 'accountId', { type: Sequelize.BIGINT, allowNull: false });
  },
  async down() {},
};
