'use strict';
module.exports = {
  async up(queryInterface, Sequelize) {
    await queryInterface.changeColumn('JournalLines', 'memo', { type: Sequelize.TEXT, allowNull: false });
  },
  async down() {},
};
