// sequelize-cli configuration: the test points DATABASE_URL at pgguard.
module.exports = {
  test: {
    use_env_variable: 'DATABASE_URL',
    dialect: 'postgres',
    logging: false,
  },
};
