'use strict';
// A constant default needs no rewrite on PostgreSQL 11+.
module.exports = {
  async up(queryInterface, Sequelize) {
    await queryInterface.addColumn('Accounts', 'status', { type: Sequelize.TEXT, allowNull: false, defaultValue: 'active' });
  },
  async down(queryInterface) {
    await queryInterface.removeColumn('Accounts', 'status');
  },
};
